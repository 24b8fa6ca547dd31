import { decodeProgram, type Program } from '@exonet/bpf';
import { bpfProgramVerifier, type GrantClaims, type KeySet, type RevocationSet, verifyGrant } from '@exonet/grant';

/** A filter ready to run on a frame: libpcap's bpf_filter signature. */
export type FrameFilter = (pkt: Uint8Array, wirelen: number, buflen: number) => number;

/** Who a task is, as the driver learned it from the attach itself and from the task's key proof. */
export interface TaskIdentity {
  /** The driver's small integer id of the task (index into its tables). */
  readonly id: number;
  /** The principal the task runs as (the kernel's word, from the attach). */
  readonly principal: string;
  /** RFC 7638 thumbprint of the key the task proved by signing the driver's challenge; null before proof. */
  readonly jkt: string | null;
}

/** A grant the driver verified and installed. */
export interface InstalledGrant {
  readonly jti: string;
  readonly task: number;
  readonly claims: GrantClaims;
  readonly kid: string;
  readonly program: Program;
  readonly filter: FrameFilter;
}

/** Why an install was refused: a stable code (the grant package's EXO_ERR_GRANT_... or the core's own). */
export interface Refusal {
  readonly ok: false;
  readonly code: string;
  readonly reason: string;
}

/** Codes of refusals decided by the core itself (verification failures keep the grant package's codes). */
export const CoreRefusal = {
  NO_KEYS: 'EXO_ERR_CORE_NO_KEYS',
  FEED_STALE: 'EXO_ERR_CORE_FEED_STALE',
  NO_KEY_PROOF: 'EXO_ERR_CORE_NO_KEY_PROOF',
  SUBJECT_MISMATCH: 'EXO_ERR_CORE_SUBJECT_MISMATCH',
  HOLDER_MISMATCH: 'EXO_ERR_CORE_HOLDER_MISMATCH',
  DUPLICATE: 'EXO_ERR_CORE_DUPLICATE_GRANT',
  EXCLUSIVE_CONFLICT: 'EXO_ERR_CORE_EXCLUSIVE_CONFLICT',
  TOO_MANY: 'EXO_ERR_CORE_TOO_MANY_GRANTS',
  COMPILE: 'EXO_ERR_CORE_COMPILE',
} as const;

/** Why a grant left the table. */
export type RemovalCause = 'revoked' | 'expired' | 'uninstalled' | 'task-gone' | 'replaced';

export interface GrantTableOptions {
  /** This driver's id: a grant's `aud` must equal it. */
  readonly driverId: string;
  /** The issuer's keys (from its JWKS), or undefined while none were fetched: then nothing installs. */
  readonly keys: () => KeySet | undefined;
  /** The revocation list the driver follows. */
  readonly revocations: RevocationSet;
  /** Tolerance for nbf and exp, seconds (the grant package's default when omitted). */
  readonly clockToleranceSec?: number;
  /** When set, a grant must live at most this long (the staleness bound): longer ones are refused. */
  readonly maxLifetimeSec?: number;
  /** When set, `iss` must equal it. */
  readonly issuer?: string;
  /** Unix seconds. */
  readonly now: () => number;
  /** Compiles a verified program to the function run per frame. */
  readonly compile: (program: Program) => FrameFilter;
  /** Whether two programs may accept a common frame (conservative: true when unsure). */
  readonly mayOverlap: (a: Program, b: Program) => boolean;
  /** True while the driver fails closed (revocation feed older than the staleness bound). */
  readonly suspended: () => boolean;
  /** Most grants one task may hold. */
  readonly maxGrantsPerTask?: number;
}

/**
 * The driver's grant table: installs a grant only after verifying it exactly as ARCHITECTURE.md says
 * (signature against the issuer's JWKS, alg, typ, aud, time, revocation, the program through the driver's
 * own BPF verifier — all in @exonet/grant's verifyGrant — then the holder and subject checks and
 * exclusivity here), and removes grants on revocation, expiry, uninstall and task death.
 */
export class GrantTable {
  readonly #o: GrantTableOptions;
  readonly #grants = new Map<string, InstalledGrant>();
  readonly #byTask = new Map<number, Set<string>>();
  readonly #listeners: ((grant: InstalledGrant, change: 'installed' | RemovalCause) => void)[] = [];
  /** Refusals counted by code. */
  readonly refusals = new Map<string, number>();
  /** Removals counted by cause. */
  readonly removals = new Map<RemovalCause, number>();

  constructor(options: GrantTableOptions) {
    this.#o = options;
  }

  /** Called after every install and removal (the demux index and the TX layers rebuild from it). */
  onChange(listener: (grant: InstalledGrant, change: 'installed' | RemovalCause) => void): void {
    this.#listeners.push(listener);
  }

  get size(): number {
    return this.#grants.size;
  }

  get(jti: string): InstalledGrant | undefined {
    return this.#grants.get(jti);
  }

  /** Every installed grant (allocates; for status and rebuilds). */
  all(): InstalledGrant[] {
    return [...this.#grants.values()];
  }

  /** The grants of one task. */
  ofTask(task: number): InstalledGrant[] {
    const ids = this.#byTask.get(task);
    return ids === undefined ? [] : [...ids].map((j) => this.#grants.get(j)!);
  }

  /**
   * Verifies and installs a grant for a task. Never throws on hostile input; a refusal installs nothing and
   * is counted by its code.
   * @param replaces jti of a grant of the same task this one renews: it is removed once this one is in,
   *   so delivery has no gap
   */
  install(task: TaskIdentity, jws: unknown, replaces?: string): { ok: true; grant: InstalledGrant } | Refusal {
    const o = this.#o;
    if (o.suspended()) return this.#refuse(CoreRefusal.FEED_STALE, 'the revocation feed is stale: failing closed');
    const keys = o.keys();
    if (keys === undefined) return this.#refuse(CoreRefusal.NO_KEYS, 'the issuer keys (JWKS) are not loaded yet');
    if (task.jkt === null) return this.#refuse(CoreRefusal.NO_KEY_PROOF, 'the task has not proved its key');
    const v = verifyGrant(jws, {
      jwks: keys,
      audience: o.driverId,
      now: o.now(),
      clockToleranceSec: o.clockToleranceSec,
      issuer: o.issuer,
      maxLifetimeSec: o.maxLifetimeSec,
      isRevoked: o.revocations.isRevoked,
      verifyProgram: bpfProgramVerifier,
    });
    if (!v.ok) return this.#refuse(v.code, v.reason);
    const c = v.claims;
    if (c.sub !== task.principal) {
      return this.#refuse(
        CoreRefusal.SUBJECT_MISMATCH,
        `the grant was issued to "${c.sub}", the task runs as "${task.principal}"`,
      );
    }
    if (c.cnf.jkt !== task.jkt) {
      return this.#refuse(
        CoreRefusal.HOLDER_MISMATCH,
        'the grant is bound to another key than the one the task proved',
      );
    }
    if (this.#grants.has(c.jti)) return this.#refuse(CoreRefusal.DUPLICATE, `grant ${c.jti} is already installed`);
    const mine = this.#byTask.get(task.id);
    const limit = o.maxGrantsPerTask ?? 256;
    if (mine !== undefined && mine.size - (replaces !== undefined && mine.has(replaces) ? 1 : 0) >= limit) {
      return this.#refuse(CoreRefusal.TOO_MANY, `a task may hold at most ${limit} grants`);
    }
    const program = decodeProgram(v.program);
    for (const other of this.#grants.values()) {
      if (other.task === task.id || other.claims.dir !== c.dir) continue;
      if ((c.excl || other.claims.excl) && o.mayOverlap(program, other.program)) {
        return this.#refuse(
          CoreRefusal.EXCLUSIVE_CONFLICT,
          `the filter may overlap grant ${other.jti} of another task, and one of them is exclusive`,
        );
      }
    }
    let filter: FrameFilter;
    try {
      filter = o.compile(program);
    } catch (err) {
      return this.#refuse(CoreRefusal.COMPILE, err instanceof Error ? err.message : 'the program does not compile');
    }
    const grant: InstalledGrant = { jti: c.jti, task: task.id, claims: c, kid: v.kid, program, filter };
    this.#grants.set(c.jti, grant);
    const set = this.#byTask.get(task.id) ?? new Set<string>();
    this.#byTask.set(task.id, set);
    set.add(c.jti);
    this.#emit(grant, 'installed');
    if (replaces !== undefined && this.#grants.get(replaces)?.task === task.id) this.#remove(replaces, 'replaced');
    return { ok: true, grant };
  }

  /** Removes one grant of a task at its request. */
  uninstall(task: number, jti: string): boolean {
    if (this.#grants.get(jti)?.task !== task) return false;
    this.#remove(jti, 'uninstalled');
    return true;
  }

  /** Removes every grant of a task (it detached or died). */
  removeTask(task: number): number {
    const ids = [...(this.#byTask.get(task) ?? [])];
    for (const jti of ids) this.#remove(jti, 'task-gone');
    return ids.length;
  }

  /** Removes every grant the revocation set now revokes (call after applying a list). */
  applyRevocations(): InstalledGrant[] {
    const gone: InstalledGrant[] = [];
    for (const g of this.#grants.values()) if (this.#o.revocations.isRevoked(g.claims, g.kid)) gone.push(g);
    for (const g of gone) this.#remove(g.jti, 'revoked');
    return gone;
  }

  /** Removes grants expired at `now` (unix seconds, with the clock tolerance). */
  expire(now: number): InstalledGrant[] {
    const tolerance = this.#o.clockToleranceSec ?? 0;
    const gone: InstalledGrant[] = [];
    for (const g of this.#grants.values()) if (g.claims.exp + tolerance <= now) gone.push(g);
    for (const g of gone) this.#remove(g.jti, 'expired');
    return gone;
  }

  /** The earliest moment (unix seconds, tolerance included) a grant expires, or Infinity. */
  nextExpiry(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const g of this.#grants.values()) next = Math.min(next, g.claims.exp);
    return next + (this.#o.clockToleranceSec ?? 0);
  }

  #remove(jti: string, cause: RemovalCause): void {
    const g = this.#grants.get(jti);
    if (g === undefined) return;
    this.#grants.delete(jti);
    const set = this.#byTask.get(g.task);
    set?.delete(jti);
    if (set?.size === 0) this.#byTask.delete(g.task);
    this.removals.set(cause, (this.removals.get(cause) ?? 0) + 1);
    this.#emit(g, cause);
  }

  #emit(g: InstalledGrant, change: 'installed' | RemovalCause): void {
    for (const l of this.#listeners) l(g, change);
  }

  #refuse(code: string, reason: string): Refusal {
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
    return { ok: false, code, reason };
  }
}
