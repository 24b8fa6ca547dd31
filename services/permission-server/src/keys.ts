/**
 * Signing keys: Ed25519 with a kid, the JWKS, rotation, and sealing at rest.
 *
 * At rest a private key is never stored in plaintext: it is sealed with AES-256-GCM under a 32-byte
 * key-encryption key (KEK), with the kid as additional authenticated data (a sealed key cannot be moved to
 * another kid). The KEK comes from the environment (`EXONET_KEK`, base64url) or from a key file created with
 * mode 0600 beside the database, and never enters the store, so a copy of the database (or of etcd) alone
 * reveals no private key. Several servers sharing one store must share the KEK.
 *
 * Rotation follows "publish before use": a new key enters as `next` (already in the JWKS), becomes `active`
 * once `publishDelaySec` has passed (drivers refetch the JWKS on an unknown kid anyway), and the previous
 * key is `retired`: still published until the last grant it signed has expired, then deleted.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  b64urlDecode,
  b64urlEncode,
  createKeySet,
  type Ed25519PublicJwk,
  generateSigningKey,
  jwksDocument,
  type KeySet,
  type SigningKey,
  signingKeyFromSeed,
} from '@exonet/grant';
import { ServerError } from './errors.ts';
import type { AuditContext, SigningKeyRecord, Store } from './store/store.ts';

/** Seals a 32-byte seed: `v1.<iv>.<ciphertext+tag>` (base64url), AAD = kid. */
export function sealPrivateKey(seed: Uint8Array, kid: string, kek: Uint8Array): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const body = Buffer.concat([cipher.update(seed), cipher.final(), cipher.getAuthTag()]);
  return `v1.${b64urlEncode(iv)}.${b64urlEncode(body)}`;
}

/** Opens a sealed seed; throws EXO_ERR_KEY_SEALED when the KEK or kid does not match. */
export function openPrivateKey(sealed: string, kid: string, kek: Uint8Array): Uint8Array {
  const [v, ivText, bodyText] = sealed.split('.');
  const iv = ivText ? b64urlDecode(ivText) : undefined;
  const body = bodyText ? b64urlDecode(bodyText) : undefined;
  if (v !== 'v1' || !iv || !body || body.length !== 48)
    throw new ServerError('EXO_ERR_KEY_SEALED', `key ${kid}: unknown sealing format`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, iv);
    decipher.setAAD(Buffer.from(kid, 'utf8'));
    decipher.setAuthTag(body.subarray(32));
    return new Uint8Array(Buffer.concat([decipher.update(body.subarray(0, 32)), decipher.final()]));
  } catch {
    throw new ServerError('EXO_ERR_KEY_SEALED', `key ${kid} cannot be opened with this key-encryption key`);
  }
}

/**
 * Loads the KEK: `EXONET_KEK` (base64url of 32 bytes) if set, else the file (created with mode 0600 and 32
 * random bytes if missing). Refuses a file readable by others.
 */
export function loadKek(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Uint8Array {
  const fromEnv = env.EXONET_KEK;
  if (fromEnv) {
    const kek = b64urlDecode(fromEnv.trim());
    if (kek?.length !== 32) throw new ServerError('EXO_ERR_SERVER_CONFIG', 'EXONET_KEK is not base64url of 32 bytes');
    return kek;
  }
  if (!file) return new Uint8Array(randomBytes(32));
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${b64urlEncode(randomBytes(32))}\n`, { mode: 0o600, flag: 'wx' });
  }
  const kek = b64urlDecode(readFileSync(file, 'utf8').trim());
  if (kek?.length !== 32) throw new ServerError('EXO_ERR_SERVER_CONFIG', `${file} is not base64url of 32 bytes`);
  return kek;
}

/** Options of {@link KeyManager}. */
export interface KeyManagerOptions {
  /** Seconds a new key is published before it signs (default 0: immediately). */
  readonly publishDelaySec?: number;
  /** Clock tolerance added to a retired key's last grant expiry before it leaves the JWKS. */
  readonly toleranceSec?: number;
  readonly now?: () => number;
}

/** Keeps the signing keys: the active one for signing, all published ones for the JWKS. */
export class KeyManager {
  readonly #store: Store;
  readonly #kek: Uint8Array;
  readonly #publishDelay: number;
  readonly #tolerance: number;
  readonly #now: () => number;
  #records: SigningKeyRecord[] = [];
  #reloads = 0;
  #latestReload: Promise<void> | undefined;
  readonly #opened = new Map<string, SigningKey>();
  readonly #lastExp = new Map<string, number>();
  #jwksCache: { at: number; doc: { keys: Ed25519PublicJwk[] } } | undefined;

  constructor(store: Store, kek: Uint8Array, options: KeyManagerOptions = {}) {
    this.#store = store;
    this.#kek = kek;
    this.#publishDelay = options.publishDelaySec ?? 0;
    this.#tolerance = options.toleranceSec ?? 5;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Loads the keys; creates and activates the first key when there is none. */
  async init(ctx: AuditContext): Promise<void> {
    await this.reload();
    if (!this.#records.some((k) => k.state === 'active')) {
      const next = this.#records.find((k) => k.state === 'next');
      if (next) await this.#store.activateKey(next.kid, this.#now(), ctx);
      else await this.#add('active', ctx);
      await this.reload();
    }
  }

  /** Re-reads the keys from the store (another server may have rotated). */
  reload(): Promise<void> {
    // Reloads may overlap (a rotation here, a key watch reporting another server's change): only the most
    // recently started one sets the records, so an older read never overwrites a newer one; a superseded
    // call waits for the newer one.
    const mine = ++this.#reloads;
    const latest = this.#store.listKeys().then(async (records) => {
      if (mine === this.#reloads) {
        this.#records = records;
        this.#jwksCache = undefined;
      } else await this.#latestReload?.catch(() => {});
    });
    this.#latestReload = latest;
    return latest;
  }

  async #add(state: 'next' | 'active', ctx: AuditContext): Promise<string> {
    const key = generateSigningKey();
    const now = this.#now();
    await this.#store.addKey(
      {
        kid: key.kid,
        publicJwk: { kty: 'OKP', crv: 'Ed25519', x: b64urlEncode(key.publicKey), kid: key.kid },
        sealedPrivateKey: sealPrivateKey(key.seed, key.kid, this.#kek),
        state,
        createdAt: now,
        activatedAt: state === 'active' ? now : null,
        retiredAt: null,
        lastGrantExp: 0,
      },
      ctx,
    );
    return key.kid;
  }

  /**
   * Starts a rotation: a new key is published as `next`; with no publish delay (or `immediate`, used when the
   * active key is revoked) it becomes active at once and the old one is retired.
   */
  async rotate(ctx: AuditContext, immediate = false): Promise<string> {
    const kid = await this.#add('next', ctx);
    if (immediate || this.#publishDelay === 0) await this.#store.activateKey(kid, this.#now(), ctx);
    await this.reload();
    return kid;
  }

  /** Promotes a due `next` key, deletes retired keys whose grants have all expired. */
  async tick(ctx: AuditContext): Promise<void> {
    await this.reload();
    const now = this.#now();
    const due = this.#records.find((k) => k.state === 'next' && k.createdAt + this.#publishDelay <= now);
    if (due) await this.#store.activateKey(due.kid, now, ctx);
    for (const k of this.#records) {
      if (k.state === 'retired' && this.#lastGrantExp(k) + this.#tolerance < now)
        await this.#store.deleteKey(k.kid, ctx);
    }
    await this.reload();
  }

  #lastGrantExp(k: SigningKeyRecord): number {
    return Math.max(k.lastGrantExp, this.#lastExp.get(k.kid) ?? 0);
  }

  /** The key to sign with now. */
  activeKey(): SigningKey {
    const record = this.#records.find((k) => k.state === 'active');
    if (!record) throw new ServerError('EXO_ERR_KEY_UNAVAILABLE');
    let key = this.#opened.get(record.kid);
    if (!key) {
      key = signingKeyFromSeed(openPrivateKey(record.sealedPrivateKey, record.kid, this.#kek), record.kid);
      this.#opened.set(record.kid, key);
    }
    return key;
  }

  /** Records that a grant signed with `kid` lives until `exp` (the store keeps it durably too). */
  noteGrant(kid: string, exp: number): void {
    if (exp > (this.#lastExp.get(kid) ?? 0)) {
      this.#lastExp.set(kid, exp);
    }
  }

  /** The published keys: next, active, and retired ones with grants that may still be valid. */
  jwks(): { keys: Ed25519PublicJwk[] } {
    const now = this.#now();
    if (this.#jwksCache && this.#jwksCache.at === now) return this.#jwksCache.doc;
    const published = this.#records.filter(
      (k) => k.state !== 'retired' || this.#lastGrantExp(k) + this.#tolerance >= now,
    );
    const doc = jwksDocument(published.map((k) => ({ kid: k.kid, publicKey: b64urlDecode(k.publicJwk.x)! })));
    this.#jwksCache = { at: now, doc };
    return doc;
  }

  /** A key set of the published keys (for the server's own verification, e.g. of renewals). */
  keySet(): KeySet {
    const set = createKeySet(this.jwks());
    if (!set.ok) throw new ServerError('EXO_ERR_KEY_UNAVAILABLE', 'the JWKS is not valid');
    return set.keySet;
  }

  /** Key records (no private parts opened). */
  records(): readonly SigningKeyRecord[] {
    return this.#records;
  }
}
