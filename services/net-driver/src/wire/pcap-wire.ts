import { WireError } from '../errors.ts';
import { openPcapFile, type PcapReader, PcapWriter } from './pcap-file.ts';
import { type FrameSource, MIN_WIRE_FRAME, padShortFrame, type Wire, type WirePort } from './wire.ts';

/**
 * A wire made of capture files: frames read from `input` arrive at the NIC when pumped (in file order), and
 * whatever the NIC sends is appended to `output`, which tcpdump -r and Wireshark read.
 */
export class PcapWire implements Wire, FrameSource {
  readonly description: string;
  private port: WirePort | undefined;
  private reader: PcapReader | undefined;
  private readonly writer: PcapWriter | undefined;
  private exhausted: boolean;
  private readonly pad = new Uint8Array(MIN_WIRE_FRAME);
  /** Frames replayed so far. */
  replayed = 0;

  /** Records of the input left out (sent by the capturing host, or too short for their link header). */
  get skipped(): number {
    return this.reader?.skipped ?? 0;
  }

  /**
   * @param options.mac the NIC's address: a Linux cooked or raw IP capture is replayed as Ethernet frames
   *   addressed to it (see link-framing.ts); without it only Ethernet captures are accepted
   */
  constructor(options: { readonly input?: string; readonly output?: string; readonly mac?: Uint8Array }) {
    if (!options.input && !options.output) {
      throw new WireError('EXO_ERR_WIRE_SPEC', 'a pcap wire needs an input file, an output file or both');
    }
    if (options.input) this.reader = openPcapFile(options.input, { frameFor: options.mac });
    this.writer = options.output ? new PcapWriter(options.output) : undefined;
    this.exhausted = !this.reader;
    this.description = `pcap:${[options.input && `in=${options.input}`, options.output && `out=${options.output}`].filter(Boolean).join(',')}`;
  }

  get done(): boolean {
    return this.exhausted;
  }

  attach(port: WirePort): void {
    this.port = port;
    port.setCarrier(true);
  }

  /**
   * Delivers up to `max` captured frames; frames shorter than an Ethernet header are skipped, frames shorter
   * than 60 bytes are padded (captures taken on the sending host hold them unpadded).
   */
  pump(max: number): number {
    if (!this.port || !this.reader) return 0;
    let n = 0;
    while (n < max) {
      const rec = this.reader.next();
      if (!rec) {
        this.exhausted = true;
        break;
      }
      if (rec.data.length < 14) continue;
      this.port.deliver(padShortFrame(rec.data, this.pad));
      this.replayed++;
      n++;
    }
    return n;
  }

  transmit(data: Uint8Array, offset: number, length: number): void {
    this.writer?.write(data, offset, length);
  }

  async close(): Promise<void> {
    this.writer?.close();
    this.reader = undefined;
    this.exhausted = true;
    this.port?.setCarrier(false);
    this.port = undefined;
  }
}
