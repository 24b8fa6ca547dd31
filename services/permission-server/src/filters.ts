/**
 * Builds the program a grant carries: the rule's filter AND the task's requested filter (bpf's conjoin, with
 * the task's filter second so its snap length applies), verified, encoded. Compiled expressions and built
 * programs are cached (policy filters repeat across requests).
 */
import { execFileSync } from 'node:child_process';
import * as bpf from '@exonet/bpf';
import { ServerError } from './errors.ts';

type Program = bpf.Program;

/** pcap-filter compiler: bpf's compileExpression (injected in tests or when another compiler is wanted). */
export type FilterCompiler = (expression: string, options?: { snaplen?: number }) => Program;

/**
 * libpcap's compiler through `tcpdump -ddd` (Ethernet link type, snap length 262144): the reference
 * implementation of the pcap-filter language, selectable instead of @exonet/bpf's (`compile` option). The expression is one
 * argv element (no shell); the output is parsed and then verified like any other program.
 */
export function libpcapCompiler(expression: string): Program {
  if (expression.length > 4096 || expression.startsWith('-')) throw new Error('expression too long or starts with "-"');
  const text = execFileSync('tcpdump', ['-ddd', '-y', 'EN10MB', '-s', '262144', '--', expression], {
    encoding: 'utf8',
    timeout: 5000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return bpf.parseProgramText(text);
}

/** The default compiler: @exonet/bpf's compileExpression (libpcapCompiler is the alternative). */
export function defaultCompiler(): FilterCompiler {
  return (expression, options) => bpf.compileExpression(expression, options);
}

/** What the task asked for: an expression or a program (8-byte instructions). */
export type RequestedFilter = { readonly expression: string } | { readonly program: Uint8Array };

const CACHE_LIMIT = 10_000;

function remember<K, V>(map: Map<K, V>, key: K, value: V): V {
  if (map.size >= CACHE_LIMIT) map.clear();
  map.set(key, value);
  return value;
}

/** Compiles, conjoins and encodes filters. */
export class FilterBuilder {
  readonly #compile: FilterCompiler;
  readonly #compiled = new Map<string, Program>();
  readonly #built = new Map<string, Uint8Array>();

  constructor(compile?: FilterCompiler) {
    this.#compile = compile ?? defaultCompiler();
  }

  /** Compiles an expression (cached); throws `code` with the compiler's message on failure. */
  compile(expression: string, code: 'EXO_ERR_GRANT_FILTER_INVALID' | 'EXO_ERR_POLICY_TEMPLATE'): Program {
    const cached = this.#compiled.get(expression);
    if (cached) return cached;
    let program: Program;
    try {
      program = this.#compile(expression);
    } catch (err) {
      throw new ServerError(code, `filter does not compile: ${err instanceof Error ? err.message : String(err)}`);
    }
    const verdict = bpf.verifyProgram(program);
    if (!verdict.ok) throw new ServerError(code, `compiled filter rejected by the verifier: ${verdict.message}`);
    return remember(this.#compiled, expression, program);
  }

  /** The granted program's bytes for a rule filter and a requested filter. */
  build(ruleFilter: string, requested: RequestedFilter): Uint8Array {
    const requestKey =
      'expression' in requested
        ? `e:${requested.expression}`
        : `p:${Buffer.from(requested.program).toString('base64url')}`;
    const key = `${ruleFilter}\n${requestKey}`;
    const cached = this.#built.get(key);
    if (cached) return cached;
    const ruleProgram = this.compile(ruleFilter, 'EXO_ERR_POLICY_TEMPLATE');
    let asked: Program;
    if ('expression' in requested) asked = this.compile(requested.expression, 'EXO_ERR_GRANT_FILTER_INVALID');
    else {
      try {
        asked = bpf.decodeProgram(requested.program);
      } catch (err) {
        throw new ServerError(
          'EXO_ERR_GRANT_FILTER_INVALID',
          err instanceof Error ? err.message : 'undecodable program',
        );
      }
      const verdict = bpf.verifyProgram(asked);
      if (!verdict.ok)
        throw new ServerError(
          'EXO_ERR_GRANT_FILTER_INVALID',
          `the BPF verifier rejects the program: ${verdict.message}`,
        );
    }
    let granted: Program;
    try {
      granted = bpf.conjoin(ruleProgram, asked);
    } catch (err) {
      throw new ServerError('EXO_ERR_GRANT_TOO_LONG', err instanceof Error ? err.message : 'conjoin failed');
    }
    const verdict = bpf.verifyProgram(granted);
    // Defence in depth: never sign a program our own verifier rejects.
    if (!verdict.ok)
      throw new ServerError('EXO_ERR_GRANT_FILTER_INVALID', `granted program rejected: ${verdict.message}`);
    // A request outside the rule (a tcp filter under a udp rule, another port) conjoins to a program that
    // accepts nothing. Signing it would hide the refusal: say so instead. The summary is sound, so "no
    // alternative" proves the program accepts no frame.
    if (bpf.summarize(granted).alternatives.length === 0) {
      throw new ServerError(
        'EXO_ERR_GRANT_OUTSIDE_RULE',
        "the requested filter and the rule's filter have nothing in common: the grant would match no frame",
      );
    }
    return remember(this.#built, key, bpf.encodeProgram(granted));
  }
}
