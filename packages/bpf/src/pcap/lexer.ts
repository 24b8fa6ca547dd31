/**
 * Tokeniser for the pcap-filter language (pcap-filter(7)), following libpcap's scanner.l for the subset
 * this package compiles.
 * @module
 */
import { BpfError, BpfErrorCode } from '../errors.ts';
import { parseIPv6 } from './addresses.ts';

export type TokenKind =
  | 'kw' // a keyword: qualifiers, protocols, and/or/not, less, greater, len, vlan...
  | 'num' // a number (decimal, 0x hex, 0 octal) or a named constant such as tcp-syn
  | 'hid' // a dotted IPv4 address, possibly partial: 10, 10.1, 10.1.2, 10.1.2.3 (only when it has dots)
  | 'hid6' // an IPv6 address
  | 'eid' // an Ethernet address
  | 'range' // NUM-NUM, for portrange
  | 'id' // a name (or a backslash-escaped keyword)
  | 'op' // punctuation and operators
  | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** Source text (keyword and operator spelling, normalised: `&&` is `and`, `!` is `not`, `==` is `=`). */
  readonly text: string;
  /** Numeric value for num tokens. */
  readonly value: number;
  /** 0-based offset in the expression. */
  readonly pos: number;
}

/** The keywords this compiler knows. (libpcap has more; those are reported as unsupported.) */
export const KEYWORDS = new Set([
  'dst',
  'src',
  'host',
  'net',
  'mask',
  'port',
  'portrange',
  'proto',
  'ether',
  'link',
  'ip',
  'ip6',
  'arp',
  'rarp',
  'tcp',
  'udp',
  'icmp',
  'icmp6',
  'sctp',
  'igmp',
  'and',
  'or',
  'not',
  'less',
  'greater',
  'len',
  'vlan',
  'mpls',
  'pppoes',
  'llc',
  'inbound',
  'outbound',
  'broadcast',
  'multicast',
]);

/** libpcap keywords outside this compiler's subset: recognised only to say so. */
export const UNSUPPORTED_KEYWORDS = new Set([
  'gateway',
  'protochain',
  'ifname',
  'on',
  'rnr',
  'rulenum',
  'reason',
  'rset',
  'srnr',
  'subrulenum',
  'action',
  'pppoed',
  'geneve',
  'atalk',
  'aarp',
  'decnet',
  'lat',
  'sca',
  'moprc',
  'mopdl',
  'iso',
  'esis',
  'isis',
  'clnp',
  'stp',
  'ipx',
  'netbeui',
  'fddi',
  'tr',
  'wlan',
  'pim',
  'vrrp',
  'carp',
  'igrp',
  'ah',
  'esp',
  'radio',
  'type',
  'subtype',
  'dir',
  'addr1',
  'addr2',
  'addr3',
  'addr4',
  'ra',
  'ta',
  'lane',
  'metac',
  'bcc',
  'oam',
  'oamf4',
  'oamf4ec',
  'oamf4sc',
  'sc',
  'ilmic',
  'vpi',
  'vci',
  'connectmsg',
  'metaconnect',
  'l1',
  'l2',
  'iih',
  'lsp',
  'snp',
  'csnp',
  'psnp',
  'fisu',
  'lssu',
  'msu',
  'sio',
  'opc',
  'dpc',
  'sls',
  'hfisu',
  'hlssu',
  'hmsu',
  'hsio',
  'hopc',
  'hdpc',
  'hsls',
  'slip',
  'vxlan',
]);

/** Named constants pcap-filter(7) defines for byte offsets and field values. */
export const NAMED_NUMBERS: ReadonlyMap<string, number> = new Map([
  ['icmptype', 0],
  ['icmpcode', 1],
  ['icmp6type', 0],
  ['icmp6code', 1],
  ['tcpflags', 13],
  ['tcp-fin', 0x01],
  ['tcp-syn', 0x02],
  ['tcp-rst', 0x04],
  ['tcp-push', 0x08],
  ['tcp-ack', 0x10],
  ['tcp-urg', 0x20],
  ['tcp-ece', 0x40],
  ['tcp-cwr', 0x80],
  ['icmp-echoreply', 0],
  ['icmp-unreach', 3],
  ['icmp-sourcequench', 4],
  ['icmp-redirect', 5],
  ['icmp-echo', 8],
  ['icmp-routeradvert', 9],
  ['icmp-routersolicit', 10],
  ['icmp-timxceed', 11],
  ['icmp-paramprob', 12],
  ['icmp-tstamp', 13],
  ['icmp-tstampreply', 14],
  ['icmp-ireq', 15],
  ['icmp-ireqreply', 16],
  ['icmp-maskreq', 17],
  ['icmp-maskreply', 18],
  ['icmp6-destinationunreach', 1],
  ['icmp6-packettoobig', 2],
  ['icmp6-timeexceeded', 3],
  ['icmp6-parameterproblem', 4],
  ['icmp6-echo', 128],
  ['icmp6-echoreply', 129],
  ['icmp6-multicastlistenerquery', 130],
  ['icmp6-multicastlistenerreportv1', 131],
  ['icmp6-multicastlistenerdone', 132],
  ['icmp6-routersolicit', 133],
  ['icmp6-routeradvert', 134],
  ['icmp6-neighborsolicit', 135],
  ['icmp6-neighboradvert', 136],
  ['icmp6-redirect', 137],
]);

/** Longest expression accepted: keeps parsing cost bounded on hostile input. */
export const MAX_EXPRESSION_LENGTH = 65536;

const OPS = [
  '&&',
  '||',
  '==',
  '!=',
  '<=',
  '>=',
  '<<',
  '>>',
  '(',
  ')',
  '[',
  ']',
  ':',
  '!',
  '=',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&',
  '|',
  '^',
];
const OP_ALIASES: Record<string, string> = { '&&': 'and', '||': 'or', '!': 'not', '==': '=' };

function syntaxAt(pos: number, message: string, expected: readonly string[] = []): BpfError {
  return new BpfError(BpfErrorCode.EXPR_SYNTAX, `position ${pos}: ${message}`, { position: pos, expected });
}

/** Parses a C-style unsigned number as libpcap's stoulen does: 0x hex, leading-0 octal, else decimal. */
function parseNumber(text: string, pos: number): number {
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) v = Number.parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) v = text.length > 1 ? Number.parseInt(text.slice(1), 8) : 0;
  else if (/^[0-9]+$/.test(text)) v = Number(text);
  else throw syntaxAt(pos, `malformed number "${text}"`);
  if (!(v <= 0xffffffff)) throw syntaxAt(pos, `number ${text} does not fit in 32 bits`);
  return v;
}

const WORD = /[A-Za-z0-9_.:-]/;

/** Splits an expression into tokens; the last token is `eof`. */
export function tokenize(src: string): Token[] {
  if (src.length > MAX_EXPRESSION_LENGTH) {
    throw syntaxAt(0, `expression longer than ${MAX_EXPRESSION_LENGTH} characters`);
  }
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if (c === '\\') {
      // A backslash makes a keyword an identifier: `ip proto \tcp`.
      i++;
      while (i < src.length && /[A-Za-z0-9_-]/.test(src[i]!)) i++;
      if (i === start + 1) throw syntaxAt(start, 'a backslash must be followed by a name');
      out.push({ kind: 'id', text: src.slice(start + 1, i), value: 0, pos: start });
      continue;
    }
    if (WORD.test(c) && c !== '-' && c !== ':') {
      while (i < src.length && WORD.test(src[i]!)) i++;
      // An address or name never ends with '-'; give a trailing '-' back to arithmetic (`len-1` is not a name).
      while (i > start + 1 && src[i - 1] === '-') i--;
      // A ':' belongs to the word only in an Ethernet or IPv6 address; otherwise it is `proto[off:size]`'s.
      const word = src.slice(start, i);
      if (word.includes(':') && !MAC_COLON.test(word) && !parseIPv6(word)) i = start + word.indexOf(':');
      out.push(classifyWord(src.slice(start, i), start));
      continue;
    }
    if (c === ':' && src[i + 1] === ':') {
      // An IPv6 address starting with "::".
      while (i < src.length && /[0-9A-Fa-f:.]/.test(src[i]!)) i++;
      out.push(classifyWord(src.slice(start, i), start));
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw syntaxAt(start, `unexpected character "${c}"`);
    i += op.length;
    const text = OP_ALIASES[op] ?? op;
    out.push({ kind: text === 'and' || text === 'or' || text === 'not' ? 'kw' : 'op', text, value: 0, pos: start });
  }
  out.push({ kind: 'eof', text: 'end of expression', value: 0, pos: src.length });
  return out;
}

const MAC_COLON = /^[0-9A-Fa-f]{1,2}([:-])[0-9A-Fa-f]{1,2}(\1[0-9A-Fa-f]{1,2}){4}$/;
const MAC_DOTTED = /^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$/;

function classifyWord(w: string, pos: number): Token {
  if (KEYWORDS.has(w)) return { kind: 'kw', text: w, value: 0, pos };
  const named = NAMED_NUMBERS.get(w);
  if (named !== undefined) return { kind: 'num', text: w, value: named, pos };
  if (MAC_COLON.test(w) || MAC_DOTTED.test(w)) return { kind: 'eid', text: w, value: 0, pos };
  if (w.includes(':')) return { kind: 'hid6', text: w, value: 0, pos };
  if (/^[0-9]+(\.[0-9]+){1,3}$/.test(w)) return { kind: 'hid', text: w, value: 0, pos };
  if (/^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(w)) return { kind: 'num', text: w, value: parseNumber(w, pos), pos };
  if (/^(0[xX][0-9a-fA-F]+|[0-9]+)-(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(w))
    return { kind: 'range', text: w, value: 0, pos };
  if (/^[0-9]/.test(w) && !/^[0-9]+[A-Za-z]/.test(w)) throw syntaxAt(pos, `malformed number or address "${w}"`);
  return { kind: 'id', text: w, value: 0, pos };
}

/** Splits a range token "a-b" into its two numbers. */
export function rangeBounds(t: Token): [number, number] {
  const [a, b] = t.text.split('-') as [string, string];
  return [parseNumber(a, t.pos), parseNumber(b, t.pos + a.length + 1)];
}

export { parseNumber, syntaxAt };
