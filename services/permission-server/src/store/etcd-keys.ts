/**
 * The etcd key layout of the permission server, under one prefix (default `/exonet/`):
 *
 * | key | value | notes |
 * |---|---|---|
 * | `policy/<kind>/<id>` | object without `version` | version = the key's mod revision |
 * | `tokens/<hash>` | TokenRecord | |
 * | `keys/<kid>` | SigningKeyRecord | `lastGrantExp` is the max of it and `keyexp/<kid>/*` |
 * | `keyexp/<kid>/<exp, 12 digits>` | empty | one key per distinct exp, so issuers never contend on the key record |
 * | `grants/<jti>` | GrantRecord | |
 * | `gidx/<sub,rule,kid>/<value>/<jti>` | empty | grants by subject, rule and key (revocation, listing) |
 * | `resources/<driver>/<resource>` | live claims on that resource | the exclusivity CAS target |
 * | `revocations/<id>` | RevocationInput | seq = create revision; written as PUTs, never deleted to revoke |
 * | `revocations-head` | empty | mod revision = newest revocation's seq |
 * | `audit/<id>` | AuditRecord without `seq` | seq = create revision |
 * | `leader/<name>` | replica id | lease-bound leadership (key rotation) |
 *
 * Every id is percent-encoded in its key so that no id can reach into another key's range.
 */

/** Key builder for one prefix. */
export class EtcdKeys {
  constructor(readonly prefix: string) {}

  policy(kind: string, id?: string): string {
    return id === undefined ? `${this.prefix}policy/${enc(kind)}/` : `${this.prefix}policy/${enc(kind)}/${enc(id)}`;
  }
  tokens(hash?: string): string {
    return hash === undefined ? `${this.prefix}tokens/` : `${this.prefix}tokens/${enc(hash)}`;
  }
  keys(kid?: string): string {
    return kid === undefined ? `${this.prefix}keys/` : `${this.prefix}keys/${enc(kid)}`;
  }
  keyExp(kid?: string, exp?: number): string {
    if (kid === undefined) return `${this.prefix}keyexp/`;
    return exp === undefined ? `${this.prefix}keyexp/${enc(kid)}/` : `${this.prefix}keyexp/${enc(kid)}/${pad(exp)}`;
  }
  grants(jti?: string): string {
    return jti === undefined ? `${this.prefix}grants/` : `${this.prefix}grants/${enc(jti)}`;
  }
  /** Index of grants by subject, rule or key: `gidx/<kind>/<value>/<jti>` (empty values). */
  grantIndex(kind: 'sub' | 'rule' | 'kid', value: string, jti?: string): string {
    const base = `${this.prefix}gidx/${kind}/${enc(value)}/`;
    return jti === undefined ? base : `${base}${enc(jti)}`;
  }
  resource(driver: string, resource: string): string {
    return `${this.prefix}resources/${enc(driver)}/${enc(resource)}`;
  }
  revocations(id?: string): string {
    return id === undefined ? `${this.prefix}revocations/` : `${this.prefix}revocations/${enc(id)}`;
  }
  revocationsHead(): string {
    return `${this.prefix}revocations-head`;
  }
  audit(id?: string): string {
    return id === undefined ? `${this.prefix}audit/` : `${this.prefix}audit/${enc(id)}`;
  }
  leader(name: string): string {
    return `${this.prefix}leader/${enc(name)}`;
  }
  meta(name: string): string {
    return `${this.prefix}meta/${enc(name)}`;
  }
}

/** Percent-encodes an id so that `/` and other bytes cannot change the key's structure. */
export function enc(id: string): string {
  return encodeURIComponent(id);
}

/** Inverse of {@link enc}. */
export function dec(part: string): string {
  return decodeURIComponent(part);
}

/** Zero-pads a non-negative integer to 12 digits so that lexical order is numeric order. */
export function pad(n: number): string {
  return String(Math.max(0, Math.floor(n))).padStart(12, '0');
}

/** The range end that makes `[key, end)` every key starting with `key` (etcd's prefix convention). */
export function prefixEnd(key: Buffer): Buffer {
  const end = Buffer.from(key);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
