import { closeSync, openSync, writeSync } from 'node:fs';
import { WireError } from '../errors.ts';

/** LINKTYPE_ETHERNET. */
export const LINKTYPE_ETHERNET = 1;
const MAGIC_USEC = 0xa1b2c3d4;
const MAGIC_NSEC = 0xa1b23c4d;
const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;
/** Largest captured length we accept in a record (tcpdump's MAXIMUM_SNAPLEN). */
const MAX_RECORD = 262144;

/** One captured frame. */
export interface PcapRecord {
  /** Capture time in microseconds since the epoch. */
  readonly timestampMicros: number;
  /** The captured bytes. */
  readonly data: Uint8Array;
  /** The frame's length on the wire (at least data.length). */
  readonly originalLength: number;
}

/**
 * Reads a classic pcap file (either byte order, microsecond or nanosecond timestamps) of Ethernet frames.
 * Malformed input is an EXO_ERR_WIRE_PCAP error naming what and where, never a crash.
 */
export class PcapReader {
  private readonly view: DataView;
  private readonly le: boolean;
  private readonly nano: boolean;
  private offset = GLOBAL_HEADER;
  readonly linkType: number;
  readonly snapLength: number;

  constructor(private readonly bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array) || bytes.length < GLOBAL_HEADER) {
      throw new WireError('EXO_ERR_WIRE_PCAP', `expected a pcap file of at least 24 bytes, got ${bytes?.length ?? 0}`);
    }
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const le = this.view.getUint32(0, true);
    const be = this.view.getUint32(0, false);
    if (le === MAGIC_USEC || le === MAGIC_NSEC) this.le = true;
    else if (be === MAGIC_USEC || be === MAGIC_NSEC) this.le = false;
    else throw new WireError('EXO_ERR_WIRE_PCAP', `not a pcap file: magic 0x${le.toString(16).padStart(8, '0')}`);
    this.nano = (this.le ? le : be) === MAGIC_NSEC;
    const major = this.view.getUint16(4, this.le);
    if (major !== 2) throw new WireError('EXO_ERR_WIRE_PCAP', `expected pcap version 2.x, got ${major}`);
    this.snapLength = this.view.getUint32(16, this.le);
    this.linkType = this.view.getUint32(20, this.le) & 0x0fffffff;
    if (this.linkType !== LINKTYPE_ETHERNET) {
      throw new WireError('EXO_ERR_WIRE_PCAP', `expected link type 1 (Ethernet), got ${this.linkType}`);
    }
  }

  /** The next record, or null at the end of the file. */
  next(): PcapRecord | null {
    const off = this.offset;
    if (off === this.bytes.length) return null;
    if (off + RECORD_HEADER > this.bytes.length) {
      throw new WireError('EXO_ERR_WIRE_PCAP', `truncated record header at offset ${off}`);
    }
    const v = this.view;
    const sec = v.getUint32(off, this.le);
    const frac = v.getUint32(off + 4, this.le);
    const incl = v.getUint32(off + 8, this.le);
    const orig = v.getUint32(off + 12, this.le);
    if (incl > MAX_RECORD) throw new WireError('EXO_ERR_WIRE_PCAP', `record at offset ${off} claims ${incl} bytes`);
    if (off + RECORD_HEADER + incl > this.bytes.length) {
      throw new WireError('EXO_ERR_WIRE_PCAP', `truncated record at offset ${off}: ${incl} bytes claimed`);
    }
    this.offset = off + RECORD_HEADER + incl;
    return {
      timestampMicros: sec * 1e6 + (this.nano ? Math.floor(frac / 1000) : frac),
      data: this.bytes.subarray(off + RECORD_HEADER, off + RECORD_HEADER + incl),
      originalLength: Math.max(orig, incl),
    };
  }
}

/** Writes a classic pcap file (little-endian, microseconds, Ethernet) that tcpdump and Wireshark read. */
export class PcapWriter {
  private fd: number | undefined;
  private readonly header = new Uint8Array(RECORD_HEADER);
  private readonly hv = new DataView(this.header.buffer);
  /** Records written. */
  records = 0;

  constructor(
    readonly path: string,
    private readonly snapLength = 65535,
  ) {
    try {
      this.fd = openSync(path, 'w');
    } catch (err) {
      throw new WireError('EXO_ERR_WIRE_IO', `cannot create ${path}: ${(err as Error).message}`, { cause: err });
    }
    const g = new DataView(new ArrayBuffer(GLOBAL_HEADER));
    g.setUint32(0, MAGIC_USEC, true);
    g.setUint16(4, 2, true);
    g.setUint16(6, 4, true);
    g.setUint32(16, snapLength, true);
    g.setUint32(20, LINKTYPE_ETHERNET, true);
    writeSync(this.fd, new Uint8Array(g.buffer));
  }

  /** Appends `data[offset, offset + length)` captured now (or at `timestampMicros`). */
  write(data: Uint8Array, offset = 0, length = data.length - offset, timestampMicros = Date.now() * 1000): void {
    if (this.fd === undefined) throw new WireError('EXO_ERR_WIRE_IO', `${this.path} is closed`);
    const incl = Math.min(length, this.snapLength);
    const h = this.hv;
    h.setUint32(0, Math.floor(timestampMicros / 1e6), true);
    h.setUint32(4, timestampMicros % 1e6, true);
    h.setUint32(8, incl, true);
    h.setUint32(12, length, true);
    writeSync(this.fd, this.header);
    writeSync(this.fd, data, offset, incl);
    this.records++;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
