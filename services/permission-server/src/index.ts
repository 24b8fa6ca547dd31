/**
 * Issues expiring Ed25519-signed BPF grants according to capability policy; revocation feed.
 * @packageDocumentation
 */
export {};
