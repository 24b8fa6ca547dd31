/**
 * Ed25519-signed BPF grants and revocation lists: one strict verifier for server and drivers.
 *
 * Formats and test vectors: docs/grants.md. Everything here is synchronous and every verifier returns a
 * result object (`{ ok: true, ... }` or `{ ok: false, code, reason }`), never throwing on hostile input.
 * @packageDocumentation
 */

export {
  ED25519_BACKEND,
  type Ed25519KeyPair,
  type Ed25519PrivateJwk,
  type Ed25519PublicJwk,
  generateKeyPair,
  importPrivateJwk,
  importPublicJwk,
  keyPairFromSeed,
  privateJwk,
  publicJwk,
  publicKeyProblem,
  type SigningKey,
  signBytes,
  verifyReference,
  verifyStrict,
} from './ed25519.ts';
export { b64urlDecode, b64urlEncode } from './encoding.ts';
export { type Failure, type GrantErrorCode, GrantInputError, grantErrorCodes } from './errors.ts';
export { extractList, FeedError, FeedFollower, type FeedFollowerOptions } from './feed-follower.ts';
export {
  DEFAULT_CLOCK_TOLERANCE_SEC,
  decodeGrantUnverified,
  decodeProgramClaim,
  GRANT_TYP,
  type GrantClaims,
  grantClaimsProblem,
  MAX_PROGRAM_INSNS,
  type ProgramVerdict,
  signGrant,
  type VerifiedGrant,
  type VerifyGrantOptions,
  verifyGrant,
} from './grant.ts';
export { createChallenge, holderProofInput, signChallenge, verifyHolderProof } from './holder.ts';
export { createKeySet, type JwksDocument, jwksDocument, type KeyEntry, type KeySet } from './jwks.ts';
export { ALG, MAX_TOKEN_LENGTH } from './jws.ts';
export { generateHolderKey, generateSigningKey, kidOf, signingKeyFromSeed } from './keys.ts';
export { bpfProgramVerifier } from './program.ts';
export {
  REVOCATION_TYP,
  type RevocationKind,
  type RevocationList,
  type RevocationListEntry,
  RevocationSet,
  revocationListProblem,
  signRevocationList,
  type VerifyRevocationListOptions,
  verifyRevocationList,
} from './revocation.ts';
export { jwkThumbprint } from './thumbprint.ts';
