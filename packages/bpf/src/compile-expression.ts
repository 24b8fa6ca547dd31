/**
 * The pcap-filter language compiler's entry point.
 * @module
 */
import { BpfError, BpfErrorCode } from './errors.ts';
import type { Program } from './insn.ts';
import { compilePred } from './pcap/cfg.ts';
import type { LinkLayer } from './pcap/gencode.ts';
import { Parser } from './pcap/parser.ts';
import { verifyProgram } from './verifier.ts';

/** Options of {@link compileExpression}. */
export interface CompileExpressionOptions {
  /** The value an accepting filter returns (bytes to keep); libpcap's default 262144. */
  readonly snaplen?: number;
  /** The link layer the frames start with (default Ethernet); {@link linkLayerOf} maps a capture's link type. */
  readonly link?: LinkLayer;
}

export type { LinkLayer };

/**
 * The link layer of a capture file's LINKTYPE value, or undefined for one expressions do not compile for:
 * 1 Ethernet, 113 Linux cooked v1, 276 Linux cooked v2, 101 (and DLT_RAW 12) raw IP, 228 raw IPv4, 229 raw IPv6.
 */
export function linkLayerOf(linktype: number): LinkLayer | undefined {
  return LINKTYPES.get(linktype);
}

const LINKTYPES = new Map<number, LinkLayer>([
  [1, 'ethernet'],
  [113, 'linux-sll'],
  [276, 'linux-sll2'],
  [101, 'raw'],
  [12, 'raw'],
  [228, 'ipv4'],
  [229, 'ipv6'],
]);
const LINK_LAYERS = new Set<string>(LINKTYPES.values());

/** The LINKTYPE values {@link linkLayerOf} knows, for messages. */
export const KNOWN_LINKTYPES = '1 Ethernet, 113 and 276 Linux cooked, 101 and 12 raw IP, 228 raw IPv4, 229 raw IPv6';

/** libpcap's default snapshot length: what tcpdump's filters return on accept. */
export const DEFAULT_SNAPLEN = 262144;

/**
 * Compiles a pcap-filter(7) expression for Ethernet (DLT_EN10MB), or another link layer given in `options`
 * (Linux cooked captures, raw IP), into a verified program that returns
 * `snaplen` for the packets it accepts and 0 otherwise, with libpcap's verdict on every packet, truncated
 * ones included (the reference is libpcap's code before its optimiser, whose reordering can change the
 * verdict on truncated packets; see docs/bpf.md). The subset: ether/ip/ip6/arp/rarp/tcp/udp/sctp/icmp/
 * icmp6/igmp, host, net (CIDR and mask), port, portrange, src/dst qualifiers, ether host/src/dst/broadcast/
 * multicast, ether/ip/ip6 proto, vlan [id], less, greater, len, `proto[expr:size]` arithmetic with named
 * offsets and flags, and/or/not with libpcap's precedence and qualifier repetition.
 * @throws {@link BpfError} EXO_ERR_BPF_EXPR_SYNTAX (with `detail.position` and `detail.expected`),
 *   EXO_ERR_BPF_EXPR_SEMANTIC (`detail.position`), EXO_ERR_BPF_TOO_LONG
 */
export function compileExpression(expr: string, options: CompileExpressionOptions = {}): Program {
  if (typeof expr !== 'string') throw new BpfError(BpfErrorCode.ARGUMENT, 'expected the expression as a string');
  const snaplen = options.snaplen ?? DEFAULT_SNAPLEN;
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > 0xffffffff) {
    throw new BpfError(BpfErrorCode.ARGUMENT, `snaplen must be an integer 1..4294967295, got ${String(snaplen)}`);
  }
  const link = options.link ?? 'ethernet';
  if (!LINK_LAYERS.has(link)) {
    throw new BpfError(
      BpfErrorCode.ARGUMENT,
      `link must be one of ${[...LINK_LAYERS].join(', ')}, got ${String(link)}`,
    );
  }
  const pred = new Parser(expr, link).parse();
  const program = compilePred(pred, snaplen);
  const check = verifyProgram(program);
  if (!check.ok) throw new Error(`compileExpression produced an unverifiable program (a bug): ${check.message}`);
  return program;
}
