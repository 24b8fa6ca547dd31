/**
 * The permission server's error catalogue: every refusal the HTTP API gives has one of these stable codes and
 * its HTTP status. docs/permission-server.md documents each code (a test checks it).
 */

export const serverErrors = {
  EXO_ERR_HTTP_VALIDATION: { status: 400, message: 'the request does not match the schema' },
  EXO_ERR_HTTP_NOT_FOUND: { status: 404, message: 'no such route or object' },
  EXO_ERR_HTTP_RATE_LIMITED: { status: 429, message: 'too many requests for this principal' },
  EXO_ERR_HTTP_INTERNAL: { status: 500, message: 'internal error' },
  EXO_ERR_HTTP_BUSY: { status: 503, message: 'too many revocation streams are open; try again later' },
  EXO_ERR_AUTH_MISSING: { status: 401, message: 'no bearer token' },
  EXO_ERR_AUTH_INVALID: { status: 401, message: 'the bearer token is not valid' },
  EXO_ERR_AUTH_FORBIDDEN: { status: 403, message: 'this principal may not do that' },
  EXO_ERR_GRANT_DRIVER_UNKNOWN: { status: 400, message: 'no such driver in the policy' },
  EXO_ERR_GRANT_FILTER_INVALID: {
    status: 400,
    message: 'the requested filter does not compile or is rejected by the BPF verifier',
  },
  EXO_ERR_GRANT_HOLDER_KEY: { status: 400, message: 'the holder key is not a valid Ed25519 public JWK' },
  EXO_ERR_GRANT_TOO_LONG: { status: 400, message: 'the granted program would exceed 4096 instructions' },
  EXO_ERR_GRANT_OUTSIDE_RULE: {
    status: 403,
    message: 'the requested filter lies outside what the rule allows (their conjunction matches nothing)',
  },
  EXO_ERR_POLICY_DENIED: { status: 403, message: 'no policy rule allows this request' },
  EXO_ERR_POLICY_TEMPLATE: { status: 500, message: "a rule's filter template cannot be instantiated" },
  EXO_ERR_GRANT_CONFLICT: { status: 409, message: 'an exclusive grant already covers this on the driver' },
  EXO_ERR_GRANT_NOT_FOUND: { status: 404, message: 'no such grant' },
  EXO_ERR_GRANT_NOT_RENEWABLE: { status: 409, message: 'the grant is revoked or expired' },
  EXO_ERR_POLICY_NOT_FOUND: { status: 404, message: 'no such policy object' },
  EXO_ERR_POLICY_VERSION: { status: 412, message: 'the object changed since the version given in If-Match' },
  EXO_ERR_POLICY_EXISTS: { status: 409, message: 'an object with this id already exists' },
  EXO_ERR_POLICY_INVALID: { status: 400, message: 'the policy object is not valid' },
  EXO_ERR_POLICY_SELF_LOCKOUT: {
    status: 409,
    message: 'an administrator cannot delete, demote or revoke the tokens of the principal it signs in as',
  },
  EXO_ERR_KEY_UNAVAILABLE: { status: 503, message: 'no active signing key' },
  EXO_ERR_KEY_SEALED: { status: 500, message: 'a sealed private key cannot be opened with the key-encryption key' },
  EXO_ERR_STORE_UNAVAILABLE: { status: 503, message: 'the store is not available' },
  EXO_ERR_SERVER_CONFIG: { status: 500, message: 'invalid server configuration' },
} as const;

/** One of the server's stable error codes. */
export type ServerErrorCode = keyof typeof serverErrors;

/** An error the HTTP layer turns into `{ error: { code, message, ... } }` with the code's status. */
export class ServerError extends Error {
  readonly code: ServerErrorCode;
  readonly status: number;
  readonly detail: Readonly<Record<string, unknown>> | undefined;
  constructor(code: ServerErrorCode, message?: string, detail?: Record<string, unknown>) {
    super(message ?? serverErrors[code].message);
    this.name = 'ServerError';
    this.code = code;
    this.status = serverErrors[code].status;
    this.detail = detail;
  }
}
