import { compileExpression } from '@exonet/bpf';
import { compileFilter } from './filter-engine.ts';
import type { FrameFilter } from './grant-table.ts';

/** One rule of the system firewall, as the driver's configuration writes it. */
export interface FirewallRuleConfig {
  readonly action: 'allow' | 'deny';
  /** pcap-filter expression the frame must match for the rule to apply. */
  readonly filter: string;
  /** Which frames it applies to: sent by tasks (`tx`, the default), received (`rx`), or both. */
  readonly dir?: 'tx' | 'rx' | 'both';
  /** Free text for status output. */
  readonly description?: string;
}

/** The system firewall: the driver's own layer, which stays in force when task filters are suspended. */
export interface FirewallConfig {
  readonly rules: readonly FirewallRuleConfig[];
  /** What happens to a frame no rule matches. Default `allow` (task grants already bound what tasks do). */
  readonly default?: 'allow' | 'deny';
}

interface CompiledRule {
  readonly allow: boolean;
  readonly tx: boolean;
  readonly rx: boolean;
  readonly filter: FrameFilter;
  readonly text: string;
}

/** A firewall configuration that cannot be compiled: names the rule and what is wrong. */
export class FirewallConfigError extends Error {
  readonly code = 'EXO_ERR_CORE_FIREWALL_CONFIG';
  constructor(
    readonly rule: number,
    message: string,
  ) {
    super(`firewall rule ${rule}: ${message}`);
  }
}

/**
 * Ordered allow/deny rules; the first rule whose filter matches decides, as in iptables or pf's `quick`.
 * Per frame it runs at most one compiled filter per rule and allocates nothing.
 */
export class Firewall {
  readonly #rules: CompiledRule[];
  readonly #defaultAllow: boolean;
  /** Frames refused, by rule index (the last slot counts the default). */
  readonly denied: Uint32Array;

  constructor(config: FirewallConfig = { rules: [] }) {
    if (config === null || typeof config !== 'object' || !Array.isArray(config.rules)) {
      throw new FirewallConfigError(-1, 'expected { rules: [...], default?: "allow" | "deny" }');
    }
    if (config.default !== undefined && config.default !== 'allow' && config.default !== 'deny') {
      throw new FirewallConfigError(-1, `default: expected "allow" or "deny", got ${JSON.stringify(config.default)}`);
    }
    this.#rules = config.rules.map((r, i) => compileRule(r, i));
    this.#defaultAllow = (config.default ?? 'allow') === 'allow';
    this.denied = new Uint32Array(this.#rules.length + 1);
  }

  get size(): number {
    return this.#rules.length;
  }

  /** Whether a frame a task sends may leave. */
  allowsTx(frame: Uint8Array, length: number): boolean {
    return this.#decide(frame, length, true);
  }

  /** Whether a received frame may reach tasks. */
  allowsRx(frame: Uint8Array, length: number): boolean {
    return this.#decide(frame, length, false);
  }

  /** The rules as configured (for status). */
  describe(): { action: string; filter: string; dir: string; denied: number }[] {
    return this.#rules.map((r, i) => ({
      action: r.allow ? 'allow' : 'deny',
      filter: r.text,
      dir: r.tx && r.rx ? 'both' : r.tx ? 'tx' : 'rx',
      denied: this.denied[i],
    }));
  }

  #decide(frame: Uint8Array, length: number, tx: boolean): boolean {
    const rules = this.#rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      if ((tx ? r.tx : r.rx) && r.filter(frame, length, length) !== 0) {
        if (!r.allow) this.denied[i]++;
        return r.allow;
      }
    }
    if (!this.#defaultAllow) this.denied[rules.length]++;
    return this.#defaultAllow;
  }
}

function compileRule(r: FirewallRuleConfig, i: number): CompiledRule {
  if (r === null || typeof r !== 'object') throw new FirewallConfigError(i, 'expected an object');
  if (r.action !== 'allow' && r.action !== 'deny') {
    throw new FirewallConfigError(i, `action: expected "allow" or "deny", got ${JSON.stringify(r.action)}`);
  }
  const dir = r.dir ?? 'tx';
  if (dir !== 'tx' && dir !== 'rx' && dir !== 'both') {
    throw new FirewallConfigError(i, `dir: expected "tx", "rx" or "both", got ${JSON.stringify(r.dir)}`);
  }
  if (typeof r.filter !== 'string') throw new FirewallConfigError(i, 'filter: expected a pcap-filter expression');
  let filter: FrameFilter;
  try {
    filter = compileFilter(compileExpression(r.filter));
  } catch (err) {
    throw new FirewallConfigError(i, `filter "${r.filter}": ${err instanceof Error ? err.message : String(err)}`);
  }
  return { allow: r.action === 'allow', tx: dir !== 'rx', rx: dir !== 'tx', filter, text: r.filter };
}
