/**
 * SQLite schema migrations, applied in order inside one transaction each; `PRAGMA user_version` records the
 * last one applied. Never edit a released migration: append a new one.
 */
export const migrations: readonly string[] = [
  `
  CREATE TABLE policy (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
  );
  CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX tokens_principal ON tokens (principal);
  CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    public_jwk TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    activated_at INTEGER,
    retired_at INTEGER,
    last_grant_exp INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE grants (
    jti TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    driver TEXT NOT NULL,
    rule TEXT NOT NULL,
    kid TEXT NOT NULL,
    iat INTEGER NOT NULL,
    exp INTEGER NOT NULL,
    revoked_seq INTEGER,
    body TEXT NOT NULL
  );
  CREATE INDEX grants_sub ON grants (sub, iat);
  CREATE INDEX grants_rule ON grants (rule, iat);
  CREATE INDEX grants_kid ON grants (kid);
  CREATE TABLE claims (
    driver TEXT NOT NULL,
    resource TEXT NOT NULL,
    jti TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('exclusive', 'shared')),
    exp INTEGER NOT NULL,
    PRIMARY KEY (driver, resource, jti)
  );
  CREATE INDEX claims_jti ON claims (jti);
  CREATE TABLE revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('jti', 'sub', 'rule', 'kid')),
    value TEXT NOT NULL,
    at INTEGER NOT NULL,
    until INTEGER NOT NULL,
    reason TEXT NOT NULL
  );
  CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    request_id TEXT,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
  );
  `,
  // 2: conflict checks look for one live claim of a mode on a resource without scanning its shared claims.
  `
  CREATE INDEX claims_live ON claims (driver, resource, mode, exp);
  `,
  // 3: claims without the (driver, resource, jti) primary key. Its index duplicated claims_live's prefix and,
  // with one insertion point per resource, dirtied one more page per resource in every commit (about a
  // quarter of the WAL written per grant). jti is unique in grants and a grant claims distinct resources, so
  // the key guarded nothing; lookups use claims_live (conflicts) and claims_jti (release).
  `
  CREATE TABLE claims_v3 (
    driver TEXT NOT NULL,
    resource TEXT NOT NULL,
    jti TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('exclusive', 'shared')),
    exp INTEGER NOT NULL
  );
  INSERT INTO claims_v3 (driver, resource, jti, mode, exp) SELECT driver, resource, jti, mode, exp FROM claims;
  DROP TABLE claims;
  ALTER TABLE claims_v3 RENAME TO claims;
  CREATE INDEX claims_jti ON claims (jti);
  CREATE INDEX claims_live ON claims (driver, resource, mode, exp);
  `,
];
