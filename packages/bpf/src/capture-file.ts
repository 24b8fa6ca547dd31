/**
 * Reader for classic libpcap capture files (microsecond and nanosecond, either byte order), as used by
 * `exonet bpf run --pcap`. pcapng is recognised only to say it is not supported.
 * @module
 */
import { BpfError, BpfErrorCode } from './errors.ts';

/** One captured packet: the bytes captured (buflen = data.length) and the original length (wirelen). */
export interface CapturedPacket {
  readonly data: Uint8Array;
  readonly wirelen: number;
}

export interface CaptureFile {
  /** DLT/LINKTYPE of the file (1 = Ethernet). */
  readonly linktype: number;
  readonly snaplen: number;
  readonly packets: readonly CapturedPacket[];
}

/** No record can claim more than this (libpcap's own sanity limit is 256 KiB by default; allow jumbo captures). */
const MAX_RECORD = 16 * 1024 * 1024;

function bad(message: string): BpfError {
  return new BpfError(BpfErrorCode.ARGUMENT, `pcap file: ${message}`);
}

/** Parses a whole capture file held in memory. */
export function readCaptureFile(bytes: Uint8Array): CaptureFile {
  if (!(bytes instanceof Uint8Array)) throw bad('expected the file contents as a Uint8Array');
  if (bytes.length < 24) throw bad(`too short for a pcap header (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicBE = view.getUint32(0, false);
  let little: boolean;
  if (magicBE === 0xa1b2c3d4 || magicBE === 0xa1b23c4d) little = false;
  else if (magicBE === 0xd4c3b2a1 || magicBE === 0x4d3cb2a1) little = true;
  else if (magicBE === 0x0a0d0d0a) throw bad('pcapng files are not supported; convert with "editcap -F pcap"');
  else throw bad(`unknown magic number 0x${magicBE.toString(16)}`);
  const snaplen = view.getUint32(16, little);
  const linktype = view.getUint32(20, little) & 0x0fffffff;
  const packets: CapturedPacket[] = [];
  let at = 24;
  while (at < bytes.length) {
    if (at + 16 > bytes.length) throw bad(`truncated record header at offset ${at}`);
    const incl = view.getUint32(at + 8, little);
    const orig = view.getUint32(at + 12, little);
    if (incl > MAX_RECORD) throw bad(`record at offset ${at} claims ${incl} captured bytes`);
    if (at + 16 + incl > bytes.length) throw bad(`truncated record data at offset ${at}`);
    packets.push({ data: bytes.subarray(at + 16, at + 16 + incl), wirelen: orig });
    at += 16 + incl;
  }
  return { linktype, snaplen, packets };
}

/** Writes a classic microsecond pcap file (Ethernet by default): used by tests and tools. */
export function writeCaptureFile(packets: readonly CapturedPacket[], linktype = 1, snaplen = 262144): Uint8Array {
  const size = 24 + packets.reduce((n, p) => n + 16 + p.data.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0xa1b2c3d4, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(16, snaplen, true);
  view.setUint32(20, linktype, true);
  let at = 24;
  packets.forEach((p, i) => {
    view.setUint32(at, 1_700_000_000 + i, true);
    view.setUint32(at + 4, 0, true);
    view.setUint32(at + 8, p.data.length, true);
    view.setUint32(at + 12, p.wirelen, true);
    out.set(p.data, at + 16);
    at += 16 + p.data.length;
  });
  return out;
}
