/**
 * Ed25519-signed BPF grants and revocation lists: one strict verifier for server and drivers.
 * @packageDocumentation
 */
export {};
