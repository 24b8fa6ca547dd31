/**
 * A stand-in for a network driver in the cluster tests (the real driver is issue 6): the grant package's
 * `verifyGrant` (with the BPF verifier), the revocation-feed follower on one or more replicas, and an
 * in-memory table of installed grants. A revocation removes matching grants; when the feed turns stale the
 * table is emptied (fail closed) and nothing installs until the feed is fresh again. Holder proof is not
 * exercised here (the grant package's tests cover it).
 */
import {
  bpfProgramVerifier,
  createKeySet,
  FeedFollower,
  type GrantClaims,
  type KeySet,
  type RevocationListEntry,
  verifyGrant,
} from '@exonet/grant';

/** Result of an install attempt. */
export type InstallResult = { ok: true; jti: string } | { ok: false; code: string; reason: string };

export class TestDriver {
  readonly follower: FeedFollower;
  /** Installed grants by jti. */
  readonly installed = new Map<string, { claims: GrantClaims; kid: string }>();
  /** When each revocation (by seq) was applied here (performance.now()). */
  readonly appliedAt = new Map<number, number>();
  #keySet: KeySet | null = null;
  suspended = true;

  constructor(
    readonly id: string,
    readonly urls: readonly string[],
    readonly issuer: string,
    stalenessBoundMs: number,
  ) {
    this.follower = new FeedFollower({
      urls,
      issuer,
      stalenessBoundMs,
      refreshMs: 500,
      retryMinMs: 50,
      retryMaxMs: 500,
      requestTimeoutMs: 3000,
      onEntries: (entries) => this.#onEntries(entries),
      onStale: () => {
        // Fail closed: without a fresh revocation list no filter stays installed.
        this.suspended = true;
        this.installed.clear();
      },
      onFresh: () => {
        this.suspended = false;
      },
    });
  }

  start(): void {
    this.follower.start();
  }

  async close(): Promise<void> {
    await this.follower.close();
  }

  #onEntries(entries: readonly RevocationListEntry[]): void {
    const now = performance.now();
    for (const e of entries) this.appliedAt.set(e.seq, now);
    for (const [jti, g] of this.installed) {
      if (this.follower.revocations.isRevoked(g.claims, g.kid)) this.installed.delete(jti);
    }
  }

  async #keys(reload: boolean): Promise<KeySet> {
    if (this.#keySet && !reload) return this.#keySet;
    const base = this.follower.currentUrl ?? this.urls[0];
    const res = await fetch(`${base}/.well-known/jwks.json`, { signal: AbortSignal.timeout(5000) });
    const made = createKeySet(await res.json());
    if (!made.ok) throw new Error(made.reason);
    this.#keySet = made.keySet;
    return made.keySet;
  }

  /** Verifies a grant as a driver does and installs it (refused while the feed is stale). */
  async install(jws: string): Promise<InstallResult> {
    if (!this.follower.isFresh()) return { ok: false, code: 'STALE', reason: 'revocation feed is stale' };
    const verify = (jwks: KeySet) =>
      verifyGrant(jws, {
        jwks,
        audience: this.id,
        issuer: this.issuer,
        isRevoked: this.follower.revocations.isRevoked,
        verifyProgram: bpfProgramVerifier,
      });
    let result = verify(await this.#keys(false));
    if (!result.ok && result.code === 'EXO_ERR_GRANT_KID_UNKNOWN') result = verify(await this.#keys(true));
    if (!result.ok) return { ok: false, code: result.code, reason: result.reason };
    this.installed.set(result.claims.jti, { claims: result.claims, kid: result.kid });
    return { ok: true, jti: result.claims.jti };
  }
}
