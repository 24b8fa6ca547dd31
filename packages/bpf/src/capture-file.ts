/**
 * Reader for capture files as libpcap reads them, used by `exonet bpf run --pcap`: classic pcap
 * (microsecond and nanosecond, either byte order) and pcapng (sections of either byte order; enhanced,
 * simple and obsolete packet blocks; other blocks skipped). Like libpcap, a pcapng file whose interfaces
 * have different link types is refused: a filter is compiled for one link type.
 * @module
 */
import { BpfError, BpfErrorCode } from './errors.ts';

/** One captured packet: the bytes captured (buflen = data.length) and the original length (wirelen). */
export interface CapturedPacket {
  readonly data: Uint8Array;
  readonly wirelen: number;
  /** Capture time in microseconds since the epoch (set by the reader; writers use a made-up clock if absent). */
  readonly timestampMicros?: number;
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
  else if (magicBE === 0x0a0d0d0a) return readPcapng(bytes, view);
  else throw bad(`unknown magic number 0x${magicBE.toString(16)}`);
  const nano = magicBE === 0xa1b23c4d || magicBE === 0x4d3cb2a1;
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
    const sec = view.getUint32(at, little);
    const frac = view.getUint32(at + 4, little);
    const timestampMicros = sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac);
    packets.push({ data: bytes.subarray(at + 16, at + 16 + incl), wirelen: orig, timestampMicros });
    at += 16 + incl;
  }
  return { linktype, snaplen, packets };
}

const SHB = 0x0a0d0d0a;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const IDB = 1;
const OBSOLETE_PB = 2;
const SPB = 3;
const EPB = 6;

function pcapngBad(at: number, message: string): BpfError {
  return bad(`pcapng block at offset ${at}: ${message}`);
}

/** What a packet block needs from its interface. */
interface PcapngInterface {
  readonly snaplen: number;
  /** Converts a packet block's 64-bit timestamp to microseconds, per the interface's if_tsresol. */
  readonly toMicros: (ticks: bigint) => number;
  /** if_tsoffset in microseconds. */
  readonly offsetMicros: number;
}

/** Reads an interface description block's options: if_tsresol (9) and if_tsoffset (14). */
function describeInterface(view: DataView, from: number, end: number, little: boolean, snaplen: number) {
  // Default resolution: microseconds. BigInt, because nanoseconds since 1970 exceed 2^53.
  let toMicros = (ticks: bigint): number => Number(ticks);
  let offsetMicros = 0;
  let at = from;
  while (at + 4 <= end) {
    const code = view.getUint16(at, little);
    const len = view.getUint16(at + 2, little);
    if (code === 0 || at + 4 + len > end) break;
    if (code === 9 && len >= 1) {
      const r = view.getUint8(at + 4);
      // The high bit picks a power of two, else a power of ten; the rest is the negative exponent.
      const exp = BigInt(r & 0x7f);
      if (r & 0x80) toMicros = (t) => Number((t * 1_000_000n) >> exp);
      else if (exp >= 6n) {
        const div = 10n ** (exp - 6n);
        toMicros = (t) => Number(t / div);
      } else {
        const mul = 10n ** (6n - exp);
        toMicros = (t) => Number(t * mul);
      }
    } else if (code === 14 && len >= 8) {
      offsetMicros = Number(view.getBigInt64(at + 4, little)) * 1e6;
    }
    at += 4 + ((len + 3) & ~3);
  }
  return { snaplen, toMicros, offsetMicros } satisfies PcapngInterface;
}

/** pcapng (draft-ietf-opsawg-pcapng): a sequence of sections, each a Section Header Block and its blocks. */
function readPcapng(bytes: Uint8Array, view: DataView): CaptureFile {
  const packets: CapturedPacket[] = [];
  let linktype = -1;
  let snaplen = 0;
  let little = true;
  /** The current section's interfaces (interface ids restart at every section). */
  let interfaces: PcapngInterface[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 12 > bytes.length) throw pcapngBad(at, 'truncated block header');
    const type = view.getUint32(at, little);
    // The block type of a section header reads the same in either byte order.
    if (type === SHB) {
      if (at + 28 > bytes.length) throw pcapngBad(at, 'truncated section header');
      const bom = view.getUint32(at + 8, true);
      if (bom === BYTE_ORDER_MAGIC) little = true;
      else if (bom === 0x4d3c2b1a) little = false;
      else throw pcapngBad(at, `bad byte-order magic 0x${bom.toString(16)}`);
      const major = view.getUint16(at + 12, little);
      if (major !== 1) throw pcapngBad(at, `unsupported pcapng major version ${major}`);
      interfaces = [];
    }
    const length = view.getUint32(at + 4, little);
    if (length < 12 || length % 4 !== 0) throw pcapngBad(at, `bad block length ${length}`);
    if (length > MAX_RECORD + 64) throw pcapngBad(at, `block claims ${length} bytes`);
    if (at + length > bytes.length) throw pcapngBad(at, `truncated block (${length} bytes claimed)`);
    if (view.getUint32(at + length - 4, little) !== length) throw pcapngBad(at, 'trailing block length differs');
    const bodyEnd = at + length - 4;
    const blockType = view.getUint32(at, little);
    if (blockType === IDB) {
      if (length < 20) throw pcapngBad(at, 'interface description block too short');
      const lt = view.getUint16(at + 8, little);
      const snap = view.getUint32(at + 12, little);
      if (linktype === -1) {
        linktype = lt;
        snaplen = snap;
      } else if (lt !== linktype) {
        throw pcapngBad(at, `an interface has link type ${lt}, different from the first interface's ${linktype}`);
      }
      interfaces.push(describeInterface(view, at + 16, bodyEnd, little, snap));
    } else if (blockType === EPB || blockType === OBSOLETE_PB) {
      if (length < 32) throw pcapngBad(at, 'packet block too short');
      const iface = blockType === EPB ? view.getUint32(at + 8, little) : view.getUint16(at + 8, little);
      if (iface >= interfaces.length) throw pcapngBad(at, `packet names interface ${iface}, not described`);
      const incl = view.getUint32(at + 20, little);
      const orig = view.getUint32(at + 24, little);
      if (incl > MAX_RECORD || at + 28 + incl > bodyEnd) throw pcapngBad(at, `packet claims ${incl} captured bytes`);
      const ifc = interfaces[iface]!;
      const ticks = (BigInt(view.getUint32(at + 12, little)) << 32n) | BigInt(view.getUint32(at + 16, little));
      const timestampMicros = ifc.toMicros(ticks) + ifc.offsetMicros;
      packets.push({ data: bytes.subarray(at + 28, at + 28 + incl), wirelen: orig, timestampMicros });
    } else if (blockType === SPB) {
      if (length < 16) throw pcapngBad(at, 'simple packet block too short');
      if (interfaces.length === 0) throw pcapngBad(at, 'simple packet block before any interface');
      const orig = view.getUint32(at + 8, little);
      // The captured length is implied: the original length, cut at the interface's snap length and the block.
      let incl = Math.min(orig, bodyEnd - (at + 12));
      if (interfaces[0]!.snaplen > 0) incl = Math.min(incl, interfaces[0]!.snaplen);
      // A simple packet block has no timestamp; libpcap reports 0.
      packets.push({ data: bytes.subarray(at + 12, at + 12 + incl), wirelen: orig, timestampMicros: 0 });
    }
    at += length;
  }
  if (linktype === -1) {
    if (packets.length) throw bad('pcapng file has packets but no interface description');
    linktype = 1;
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
    const t = p.timestampMicros ?? (1_700_000_000 + i) * 1e6;
    view.setUint32(at, Math.floor(t / 1e6), true);
    view.setUint32(at + 4, t % 1e6, true);
    view.setUint32(at + 8, p.data.length, true);
    view.setUint32(at + 12, p.wirelen, true);
    out.set(p.data, at + 16);
    at += 16 + p.data.length;
  });
  return out;
}
