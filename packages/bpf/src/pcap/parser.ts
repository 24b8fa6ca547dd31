/**
 * Recursive-descent parser for the pcap-filter language that generates predicates as it goes, in source
 * order, like libpcap's grammar.y (so that `vlan` moves the offsets of what follows it). It mirrors
 * libpcap's rules: `and` and `or` have equal precedence and associate left; `not` binds tightest; a bare
 * value after `and`/`or` repeats the qualifiers of the primitive before it (`host a or b`); arithmetic
 * precedence follows grammar.y, where `%` and `^` have none, so bison's shift preference makes them group
 * to the right of whatever surrounds them.
 * @module
 */
import { BpfError, BpfErrorCode } from '../errors.ts';
import { JGE, JGT } from '../insn.ts';
import { ipv6Mask, parseDotted, parseIPv6, parseMac } from './addresses.ts';
import {
  type Arth,
  binArth,
  broadcast,
  constArth,
  type Dir,
  direction,
  etherHost,
  host4,
  host6,
  type LinkLayer,
  lenArth,
  lenCompare,
  llc,
  loadArth,
  mpls,
  multicast,
  negArth,
  Offsets,
  type ProtoName,
  port,
  portrange,
  pppoes,
  protoAbbrev,
  protoNumber,
  relation,
  semantic,
  vlan,
} from './gencode.ts';
import { rangeBounds, syntaxAt, type Token, tokenize, UNSUPPORTED_KEYWORDS } from './lexer.ts';
import { and, not, or, type Pred, TRUE } from './pred.ts';
import { lookupService } from './services.ts';

interface Qual {
  readonly proto?: ProtoName;
  readonly dir?: Dir;
  readonly type?: 'host' | 'net' | 'port' | 'portrange' | 'proto';
  readonly pos: number;
}

const PROTOS: Record<string, ProtoName> = {
  ether: 'link',
  link: 'link',
  ip: 'ip',
  ip6: 'ip6',
  arp: 'arp',
  rarp: 'rarp',
  tcp: 'tcp',
  udp: 'udp',
  sctp: 'sctp',
  icmp: 'icmp',
  icmp6: 'icmp6',
  igmp: 'igmp',
};
const TYPES = new Set(['host', 'net', 'port', 'portrange', 'proto']);
const DIRS = new Set(['src', 'dst']);
const RELOPS = new Set(['=', '!=', '<', '<=', '>', '>=']);
const ARITH_OPS = new Set(['+', '-', '*', '/', '%', '&', '|', '^', '<<', '>>']);
/** Bison precedence of grammar.y; `%` and `^` are undeclared there. */
const PREC: Record<string, number> = { '|': 1, '&': 2, '<<': 3, '>>': 3, '+': 4, '-': 4, '*': 5, '/': 5, neg: 6 };
const VALUE_KINDS = new Set(['num', 'hid', 'hid6', 'eid', 'id', 'range']);

/** Protocol names for `proto \name` (IP) and `ether proto \name`, built in so results never depend on /etc. */
const IP_PROTO_NAMES: Record<string, number> = {
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  icmp6: 58,
  sctp: 132,
};
const ETHER_PROTO_NAMES: Record<string, number> = {
  ip: 0x0800,
  ip6: 0x86dd,
  arp: 0x0806,
  rarp: 0x8035,
  loopback: 0x9000,
};

const MAX_DEPTH = 200;

/**
 * The transport protocol of a named port under the expression's qualifier (gen_scode): a name of one
 * protocol contradicts another qualifier; a qualifier narrows a name of either.
 */
function transportOf(
  q: Qual,
  named: 'tcp' | 'udp' | undefined,
  what: string,
  keyword: string,
  pos: number,
): ProtoName | undefined {
  const asked = q.proto;
  if (asked !== undefined && asked !== 'tcp' && asked !== 'udp' && asked !== 'sctp') {
    throw semantic(pos, `illegal qualifier of '${keyword}'`);
  }
  if (asked !== undefined && named !== undefined && named !== asked) throw semantic(pos, `${what} is ${named}`);
  return asked ?? named;
}

/** libpcap's `llc` subtypes (I, S and U frames and their kinds). */
const LLC_SUBTYPES = new Set([
  'i',
  's',
  'u',
  'rr',
  'rnr',
  'rej',
  'ui',
  'ua',
  'disc',
  'dm',
  'sabme',
  'test',
  'xid',
  'frmr',
]);

export class Parser {
  private i = 0;
  private readonly toks: Token[];
  private readonly match = new Map<number, number>();
  private readonly o: Offsets;
  private depth = 0;

  constructor(src: string, link: LinkLayer = 'ethernet') {
    this.o = new Offsets(link);
    this.toks = tokenize(src);
    const stack: number[] = [];
    this.toks.forEach((t, idx) => {
      if (t.kind !== 'op') return;
      if (t.text === '(') stack.push(idx);
      else if (t.text === ')') {
        const open = stack.pop();
        if (open === undefined) throw syntaxAt(t.pos, 'unbalanced ")"', ['(']);
        this.match.set(open, idx);
      }
    });
    if (stack.length) throw syntaxAt(this.toks[stack[stack.length - 1]!]!.pos, 'unbalanced "("', [')']);
  }

  /** The whole expression; an empty one accepts everything. */
  parse(): Pred {
    if (this.peek().kind === 'eof') return TRUE;
    const { pred } = this.expr(null);
    if (this.peek().kind !== 'eof') this.fail(['and', 'or', 'end of expression']);
    return pred;
  }

  private peek(ahead = 0): Token {
    return this.toks[Math.min(this.i + ahead, this.toks.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (this.i < this.toks.length - 1) this.i++;
    return t;
  }
  private is(t: Token, kind: string, text?: string): boolean {
    return t.kind === kind && (text === undefined || t.text === text);
  }
  /**
   * `[tcp|udp|sctp] [src|dst] port NAME` as libpcap's gen_scode: the services database gives the number and
   * maybe a protocol; a name of one protocol restricts the filter to it, and contradicts another qualifier.
   */
  private namedPort(name: string, q: Qual, pos: number): Pred {
    const found = lookupService(name);
    if (found === undefined) throw semantic(pos, `unknown port '${name}'`);
    const proto = transportOf(q, found.proto, `port '${name}'`, 'port', pos);
    return port(this.o, found.port, proto, q.dir, pos);
  }

  /**
   * `portrange NAME-NAME` as libpcap's pcap_nametoportrange: split at the first '-', each side a name or a
   * number; the range keeps a protocol only when both ends have the same one.
   */
  private namedPortRange(text: string, q: Qual, pos: number): Pred {
    const cut = text.indexOf('-');
    const end = (s: string) => (/^\d+$/.test(s) ? { port: Number(s), proto: undefined } : lookupService(s));
    const a = cut > 0 ? end(text.slice(0, cut)) : undefined;
    const b = cut > 0 ? end(text.slice(cut + 1)) : undefined;
    if (a === undefined || b === undefined) throw semantic(pos, `unknown port in range '${text}'`);
    const proto = transportOf(
      q,
      a.proto === b.proto ? a.proto : undefined,
      `port in range '${text}'`,
      'portrange',
      pos,
    );
    return portrange(this.o, a.port, b.port, proto, q.dir, pos);
  }

  private fail(expected: readonly string[], at = this.peek()): never {
    const what = at.kind === 'eof' ? 'end of expression' : `"${at.text}"`;
    if (at.kind === 'id' && UNSUPPORTED_KEYWORDS.has(at.text)) {
      throw new BpfError(
        BpfErrorCode.EXPR_SEMANTIC,
        `position ${at.pos}: "${at.text}" is not supported by this compiler`,
        {
          position: at.pos,
        },
      );
    }
    throw syntaxAt(at.pos, `unexpected ${what}; expected ${expected.join(', ')}`, expected);
  }
  private expect(kind: string, text: string): Token {
    const t = this.peek();
    if (!this.is(t, kind, text)) this.fail([text]);
    return this.next();
  }
  private enter(): void {
    if (++this.depth > MAX_DEPTH) throw syntaxAt(this.peek().pos, `expression nested deeper than ${MAX_DEPTH} levels`);
  }

  /**
   * `qBefore` is what bison's `$<blk>0` holds: the qualifiers in effect before this point, which a
   * parenthesised expression passes on (`host a or (tcp) or b` means `... or host b`).
   */
  private expr(qBefore: Qual | null): { pred: Pred; q: Qual | null } {
    this.enter();
    let { pred, q } = this.term(qBefore);
    while (this.is(this.peek(), 'kw', 'and') || this.is(this.peek(), 'kw', 'or')) {
      const op = this.next().text;
      let rhs: Pred;
      if (this.startsBareId()) {
        if (!q) this.fail(['a primitive (a bare value repeats qualifiers only after a primitive such as "host a")']);
        rhs = this.id(q);
      } else {
        const t = this.term(q);
        rhs = t.pred;
        q = t.q;
      }
      pred = op === 'and' ? and(pred, rhs) : or(pred, rhs);
    }
    this.depth--;
    return { pred, q };
  }

  /** After and/or: is this a bare value (id) rather than a term? Decided by lookahead, as bison does. */
  private startsBareId(): boolean {
    let j = this.i;
    while (this.is(this.toks[j]!, 'kw', 'not')) j++;
    const isValueAt = (at: number) => {
      const t = this.toks[at]!;
      if (!VALUE_KINDS.has(t.kind)) return false;
      const after = this.toks[at + 1]!;
      return !(t.kind === 'num' && after.kind === 'op' && (ARITH_OPS.has(after.text) || RELOPS.has(after.text)));
    };
    if (isValueAt(j)) return true;
    if (this.is(this.toks[j]!, 'op', '(') && !this.parenIsArith(j)) {
      let k = j + 1;
      while (this.is(this.toks[k]!, 'kw', 'not') || (this.is(this.toks[k]!, 'op', '(') && !this.parenIsArith(k))) k++;
      return isValueAt(k);
    }
    return false;
  }

  private parenIsArith(open: number): boolean {
    const close = this.match.get(open)!;
    const after = this.toks[close + 1]!;
    return after.kind === 'op' && (ARITH_OPS.has(after.text) || RELOPS.has(after.text));
  }

  private term(qBefore: Qual | null): { pred: Pred; q: Qual | null } {
    if (this.is(this.peek(), 'kw', 'not')) {
      this.next();
      this.enter();
      const inner = this.term(qBefore);
      this.depth--;
      return { pred: not(inner.pred), q: inner.q };
    }
    return this.rterm(qBefore);
  }

  private rterm(qBefore: Qual | null): { pred: Pred; q: Qual | null } {
    const t = this.peek();
    if (this.is(t, 'op', '(')) {
      if (this.parenIsArith(this.i)) return { pred: this.relationTerm(), q: null };
      this.next();
      const { pred } = this.expr(qBefore);
      this.expect('op', ')');
      return { pred, q: qBefore };
    }
    if (t.kind === 'kw') {
      const proto = PROTOS[t.text];
      if (proto) {
        const after = this.peek(1);
        if (this.is(after, 'op', '[')) return { pred: this.relationTerm(), q: null };
        if (
          after.kind === 'kw' &&
          (TYPES.has(after.text) || DIRS.has(after.text) || after.text === 'broadcast' || after.text === 'multicast')
        ) {
          return this.headTerm();
        }
        this.next();
        return { pred: protoAbbrev(this.o, proto, t.pos), q: null };
      }
      if (TYPES.has(t.text) || DIRS.has(t.text) || t.text === 'broadcast' || t.text === 'multicast')
        return this.headTerm();
      if (t.text === 'len') return { pred: this.relationTerm(), q: null };
      if (t.text === 'less' || t.text === 'greater') {
        this.next();
        const n = this.peek();
        if (n.kind !== 'num') this.fail(['a number']);
        this.next();
        return { pred: t.text === 'less' ? not(lenCompare(JGT, n.value)) : lenCompare(JGE, n.value), q: null };
      }
      if (t.text === 'vlan' || t.text === 'mpls' || t.text === 'pppoes') {
        this.next();
        const n = this.peek();
        let id: number | undefined;
        if (n.kind === 'num') {
          this.next();
          id = n.value;
        }
        const gen = t.text === 'vlan' ? vlan : t.text === 'mpls' ? mpls : pppoes;
        return { pred: gen(this.o, id, t.pos), q: null };
      }
      if (t.text === 'inbound' || t.text === 'outbound') {
        this.next();
        return { pred: direction(this.o, t.text === 'outbound', t.pos), q: null };
      }
      if (t.text === 'llc') {
        this.next();
        const n = this.peek();
        if (n.kind === 'id' && LLC_SUBTYPES.has(n.text)) {
          throw semantic(n.pos, `'llc ${n.text}' (an LLC frame type) is not supported by this compiler`);
        }
        return { pred: llc(this.o, t.pos), q: null };
      }
    }
    if (t.kind === 'num' || this.is(t, 'op', '-')) return { pred: this.relationTerm(), q: null };
    this.fail([
      'a primitive (host, net, port, portrange, proto, ether, ip, ip6, arp, rarp, tcp, udp, icmp, vlan, less, greater...)',
      '(',
      'not',
    ]);
  }

  private headTerm(): { pred: Pred; q: Qual } {
    const start = this.peek().pos;
    let proto: ProtoName | undefined;
    let dir: Dir | undefined;
    let type: Qual['type'];
    if (this.peek().kind === 'kw' && PROTOS[this.peek().text]) proto = PROTOS[this.next().text];
    if (this.peek().kind === 'kw' && DIRS.has(this.peek().text)) {
      const first = this.next().text as 'src' | 'dst';
      const mid = this.peek();
      const other = this.peek(1);
      if (
        (this.is(mid, 'kw', 'or') || this.is(mid, 'kw', 'and')) &&
        other.kind === 'kw' &&
        DIRS.has(other.text) &&
        other.text !== first
      ) {
        this.next();
        this.next();
        dir = mid.text as 'or' | 'and';
      } else dir = first;
    }
    const t = this.peek();
    if (t.kind === 'kw' && TYPES.has(t.text)) {
      type = t.text as Qual['type'];
      this.next();
    } else if (t.kind === 'kw' && (t.text === 'broadcast' || t.text === 'multicast') && dir === undefined) {
      this.next();
      const pred = t.text === 'broadcast' ? broadcast(this.o, proto, t.pos) : multicast(this.o, proto, t.pos);
      return { pred, q: { pos: start } };
    } else if (dir === undefined) {
      this.fail(['host', 'net', 'port', 'portrange', 'proto', 'src', 'dst']);
    }
    const q: Qual = { proto, dir, type, pos: start };
    return { pred: this.id(q), q };
  }

  /** An id with inherited qualifiers: a value, `not id`, or a parenthesised list of ids. */
  private id(q: Qual): Pred {
    this.enter();
    let pred: Pred;
    const t = this.peek();
    if (this.is(t, 'kw', 'not')) {
      this.next();
      pred = not(this.id(q));
    } else if (this.is(t, 'op', '(')) {
      this.next();
      pred = this.id(q);
      while (this.is(this.peek(), 'kw', 'and') || this.is(this.peek(), 'kw', 'or')) {
        const op = this.next().text;
        const rhs = this.id(q);
        pred = op === 'and' ? and(pred, rhs) : or(pred, rhs);
      }
      this.expect('op', ')');
    } else pred = this.value(q);
    this.depth--;
    return pred;
  }

  private value(q: Qual): Pred {
    const t = this.peek();
    if (!VALUE_KINDS.has(t.kind)) this.fail(['an address, number or name']);
    this.next();
    const what = q.type === 'net' ? 'net' : 'host';
    switch (t.kind) {
      case 'num':
        switch (q.type) {
          case 'port':
            return port(this.o, t.value, q.proto, q.dir, t.pos);
          case 'portrange':
            return portrange(this.o, t.value, t.value, q.proto, q.dir, t.pos);
          case 'proto':
            if (q.dir) throw semantic(t.pos, `'${q.dir}' does not apply to proto`);
            return protoNumber(this.o, t.value, q.proto, t.pos);
          default: {
            if (q.proto === 'link') throw semantic(t.pos, 'illegal link layer address');
            let v = t.value;
            let mask = 0xffffffff;
            if (q.type === 'net') {
              // A short net number is promoted: net 10 is 10.0.0.0/8.
              while (v !== 0 && (v & 0xff000000) === 0) {
                v = (v << 8) >>> 0;
                mask = (mask << 8) >>> 0;
              }
            }
            return host4(this.o, v, mask, q.proto, q.dir, what, t.pos);
          }
        }
      case 'hid': {
        const d = parseDotted(t.text);
        if (!d) throw semantic(t.pos, `invalid IPv4 address "${t.text}"`);
        if (q.type === 'port' || q.type === 'portrange' || q.type === 'proto')
          throw semantic(t.pos, `illegal qualifier of '${q.type}'`);
        if (q.proto === 'link') throw semantic(t.pos, 'illegal link layer address');
        const shift = 32 - d.bits;
        let v = shift === 32 ? 0 : (d.value << shift) >>> 0;
        if (shift === 0) v = d.value;
        let mask = shift === 0 ? 0xffffffff : (0xffffffff << shift) >>> 0;
        const slash = this.peek();
        if (this.is(slash, 'op', '/')) {
          this.next();
          const n = this.peek();
          if (n.kind !== 'num') this.fail(['a prefix length']);
          this.next();
          if (n.value > 32) throw semantic(n.pos, 'mask length must be <= 32');
          mask = n.value === 0 ? 0 : (0xffffffff << (32 - n.value)) >>> 0;
          if ((v & ~mask) >>> 0 !== 0) throw semantic(t.pos, `non-network bits set in "${t.text}/${n.value}"`);
          if (q.type !== 'net') throw semantic(t.pos, 'Mask syntax for networks only');
        } else if (this.is(slash, 'kw', 'mask')) {
          this.next();
          const m = this.peek();
          if (m.kind !== 'hid' && m.kind !== 'num') this.fail(['a dotted netmask']);
          this.next();
          const md = m.kind === 'num' ? { value: m.value, bits: 32 } : parseDotted(m.text);
          if (!md) throw semantic(m.pos, `invalid netmask "${m.text}"`);
          mask = md.bits === 32 ? md.value : (md.value << (32 - md.bits)) >>> 0;
          if ((v & ~mask) >>> 0 !== 0) throw semantic(t.pos, `non-network bits set in "${t.text} mask ${m.text}"`);
          if (q.type !== 'net') throw semantic(t.pos, 'Mask syntax for networks only');
        }
        return host4(this.o, v, mask, q.proto, q.dir, what, t.pos);
      }
      case 'hid6': {
        const addr = parseIPv6(t.text);
        if (!addr) throw semantic(t.pos, `invalid IPv6 address "${t.text}"`);
        if (q.type === 'port' || q.type === 'portrange' || q.type === 'proto') {
          throw semantic(t.pos, 'invalid qualifier against IPv6 address');
        }
        let len = 128;
        if (this.is(this.peek(), 'op', '/')) {
          this.next();
          const n = this.peek();
          if (n.kind !== 'num') this.fail(['a prefix length']);
          this.next();
          if (n.value > 128) throw semantic(n.pos, 'mask length must be <= 128');
          len = n.value;
        }
        const mask = ipv6Mask(len);
        if (addr.some((w, i) => (w & ~mask[i]!) >>> 0 !== 0))
          throw semantic(t.pos, `non-network bits set in "${t.text}/${len}"`);
        if (q.type !== 'net' && len !== 128) throw semantic(t.pos, 'Mask syntax for networks only');
        return host6(this.o, addr, mask, q.proto, q.dir, what, t.pos);
      }
      case 'eid': {
        const mac = parseMac(t.text);
        if (!mac) throw semantic(t.pos, `invalid Ethernet address "${t.text}"`);
        if ((q.type === undefined || q.type === 'host') && q.proto === 'link')
          return etherHost(this.o, mac, q.dir, t.pos);
        throw semantic(t.pos, 'ethernet address used in non-ether expression');
      }
      case 'range': {
        if (q.type !== 'portrange') throw semantic(t.pos, `a range "${t.text}" needs 'portrange'`);
        const [a, b] = rangeBounds(t);
        return portrange(this.o, a, b, q.proto, q.dir, t.pos);
      }
      default: {
        if (q.type === 'proto') {
          if (q.dir) throw semantic(t.pos, `'${q.dir}' does not apply to proto`);
          const table = q.proto === 'link' ? ETHER_PROTO_NAMES : IP_PROTO_NAMES;
          const v = table[t.text];
          if (v === undefined) throw semantic(t.pos, `unknown protocol name "${t.text}"`);
          return protoNumber(this.o, v, q.proto, t.pos);
        }
        if (UNSUPPORTED_KEYWORDS.has(t.text)) throw semantic(t.pos, `"${t.text}" is not supported by this compiler`);
        if (q.type === 'port') return this.namedPort(t.text, q, t.pos);
        if (q.type === 'portrange') return this.namedPortRange(t.text, q, t.pos);
        throw semantic(t.pos, `host names are not resolved ("${t.text}"); use an address`);
      }
    }
  }

  private relationTerm(): Pred {
    const lhs = this.arith();
    const op = this.peek();
    if (op.kind !== 'op' || !RELOPS.has(op.text))
      this.fail(['a relation (=, !=, <, <=, >, >=)', 'an arithmetic operator']);
    this.next();
    const rhs = this.arith();
    return relation(op.text, lhs, rhs, op.pos);
  }

  /** Operator-precedence parsing with bison's conflict rules (undeclared operators always shift). */
  private arith(): Arth {
    this.enter();
    const operands: Arth[] = [];
    const ops: { op: string; pos: number }[] = [];
    const reduce = () => {
      const top = ops.pop()!;
      if (top.op === 'neg') operands.push(negArth(operands.pop()!));
      else {
        const b = operands.pop()!;
        const a = operands.pop()!;
        operands.push(binArth(top.op, a, b, top.pos));
      }
    };
    const shouldReduce = (top: string, incoming: string) => {
      const pt = PREC[top];
      const pi = PREC[incoming];
      return pt !== undefined && pi !== undefined && pt >= pi;
    };
    const operand = () => {
      while (this.is(this.peek(), 'op', '-')) ops.push({ op: 'neg', pos: this.next().pos });
      operands.push(this.atom());
    };
    operand();
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'op' || !ARITH_OPS.has(t.text)) break;
      while (ops.length && shouldReduce(ops[ops.length - 1]!.op, t.text)) reduce();
      ops.push({ op: t.text, pos: t.pos });
      this.next();
      operand();
    }
    while (ops.length) reduce();
    this.depth--;
    return operands[0]!;
  }

  private atom(): Arth {
    const t = this.peek();
    if (t.kind === 'num') {
      this.next();
      return constArth(t.value);
    }
    if (this.is(t, 'kw', 'len')) {
      this.next();
      return lenArth();
    }
    if (this.is(t, 'op', '(')) {
      this.next();
      const a = this.arith();
      this.expect('op', ')');
      return a;
    }
    if (t.kind === 'kw' && PROTOS[t.text] && this.is(this.peek(1), 'op', '[')) {
      this.next();
      this.next();
      const index = this.arith();
      let size = 1;
      if (this.is(this.peek(), 'op', ':')) {
        this.next();
        const n = this.peek();
        if (n.kind !== 'num') this.fail(['1', '2', '4']);
        this.next();
        size = n.value;
      }
      const close = this.expect('op', ']');
      return loadArth(this.o, PROTOS[t.text]!, index, size, close.pos);
    }
    this.fail(['a number', 'len', 'proto[offset]', '(', '-']);
  }
}
