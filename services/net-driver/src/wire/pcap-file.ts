import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { type CapturedPacket, type CaptureFile, KNOWN_LINKTYPES, readCaptureFile } from '@exonet/bpf';
import { WireError } from '../errors.ts';
import { ethernetFramer, type Framer } from './link-framing.ts';

/** LINKTYPE_ETHERNET. */
export const LINKTYPE_ETHERNET = 1;
const MAGIC_USEC = 0xa1b2c3d4;
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
 * Reads a capture file of Ethernet frames: classic pcap (either byte order, microsecond or nanosecond
 * timestamps) or pcapng, parsed by @exonet/bpf's reader (the one `exonet bpf run` uses, checked against
 * tcpdump). Malformed input is an EXO_ERR_WIRE_PCAP error naming what and where, never a crash.
 *
 * Given `frameFor` (the NIC's address), a capture of Linux cooked or raw IP packets is read as Ethernet
 * frames (see link-framing.ts); records that cannot be frames are counted in {@link skipped}.
 */
export class PcapReader {
  private readonly packets: readonly CapturedPacket[];
  private readonly framer: Framer;
  private index = 0;
  readonly linkType: number;
  readonly snapLength: number;
  /** Records left out: sent by the capturing host, or too short for their link header. */
  skipped = 0;

  constructor(bytes: Uint8Array, options: { readonly frameFor?: Uint8Array } = {}) {
    if (!(bytes instanceof Uint8Array) || bytes.length < GLOBAL_HEADER) {
      throw new WireError('EXO_ERR_WIRE_PCAP', `expected a pcap file of at least 24 bytes, got ${bytes?.length ?? 0}`);
    }
    let file: CaptureFile;
    try {
      file = readCaptureFile(bytes);
    } catch (err) {
      throw new WireError('EXO_ERR_WIRE_PCAP', err instanceof Error ? err.message : String(err), { cause: err });
    }
    this.linkType = file.linktype;
    this.snapLength = file.snaplen;
    const framer =
      this.linkType === LINKTYPE_ETHERNET || options.frameFor === undefined
        ? undefined
        : ethernetFramer(this.linkType, options.frameFor);
    if (this.linkType !== LINKTYPE_ETHERNET && framer === undefined) {
      throw new WireError(
        'EXO_ERR_WIRE_PCAP',
        options.frameFor === undefined
          ? `expected link type 1 (Ethernet), got ${this.linkType}`
          : `link type ${this.linkType} cannot be replayed onto Ethernet (known: ${KNOWN_LINKTYPES})`,
      );
    }
    this.framer = framer ?? ((data, wirelen) => ({ data, wirelen }));
    const big = file.packets.find((p) => p.data.length > MAX_RECORD);
    if (big)
      throw new WireError('EXO_ERR_WIRE_PCAP', `a record claims ${big.data.length} bytes (at most ${MAX_RECORD})`);
    this.packets = file.packets;
  }

  /** The next record, or null at the end of the file. */
  next(): PcapRecord | null {
    for (;;) {
      const p = this.packets[this.index];
      if (!p) return null;
      this.index++;
      const f = this.framer(p.data, p.wirelen);
      if (f === null) {
        this.skipped++;
        continue;
      }
      return {
        timestampMicros: p.timestampMicros ?? 0,
        data: f.data,
        originalLength: Math.max(f.wirelen, f.data.length),
      };
    }
  }
}

/** Reads and parses a capture file; every error names the file (EXO_ERR_WIRE_IO, EXO_ERR_WIRE_PCAP). */
export function openPcapFile(path: string, options: { readonly frameFor?: Uint8Array } = {}): PcapReader {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new WireError('EXO_ERR_WIRE_IO', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return new PcapReader(bytes, options);
  } catch (err) {
    if (err instanceof WireError) throw new WireError(err.code, `${path}: ${err.message}`, { cause: err });
    throw err;
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
