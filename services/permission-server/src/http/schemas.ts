/** zod schemas of the HTTP API: everything that enters is checked here before a handler sees it. */
import { z } from 'zod';

export const Id = z.string().regex(/^[A-Za-z0-9._:@~-]{1,128}$/, 'an identifier of 1-128 characters [A-Za-z0-9._:@~-]');
const Token = z.string().regex(/^[A-Za-z0-9.:_/-]{1,64}$/, 'a plain token');
const B64url = z.string().regex(/^[A-Za-z0-9_-]+$/, 'base64url without padding');

export const ErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), detail: z.record(z.string(), z.unknown()).optional() }),
});

export const HolderJwk = z
  .object({
    kty: z.literal('OKP'),
    crv: z.literal('Ed25519'),
    x: B64url.length(43),
    kid: z.string().max(128).optional(),
    alg: z.string().max(16).optional(),
    use: z.string().max(8).optional(),
  })
  .strict();

export const GrantRequestBody = z
  .object({
    driver: Id,
    dir: z.enum(['rx', 'tx']),
    layer: z.enum(['task', 'user', 'system']).optional(),
    filter: z.string().min(1).max(4096).optional().describe('pcap-filter expression'),
    program: B64url.max(43_700).optional().describe('base64url of 8-byte BPF instructions (instead of filter)'),
    holder: HolderJwk.describe("the task's Ed25519 public key"),
    port: z.number().int().min(0).max(65_535).optional(),
    ttl: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .optional()
      .describe('requested lifetime, seconds (capped by rule and staleness bound)'),
    exclusive: z.boolean().optional(),
    rule: Id.optional(),
  })
  .strict()
  .refine((b) => (b.filter === undefined) !== (b.program === undefined), {
    message: 'give exactly one of filter and program',
  });

export const IssuedGrantBody = z.object({
  id: z.string(),
  grant: z.string(),
  expiresAt: z.number(),
  program: z.string(),
  rule: z.string(),
  exclusive: z.boolean(),
  driver: z.string(),
});

export const GrantListQuery = z
  .object({
    sub: Id.optional(),
    live: z
      .enum(['true', 'false'])
      .optional()
      .transform((v) => v === 'true'),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

export const RenewBody = z.object({ ttl: z.number().int().min(1).max(86_400).optional() }).strict();

export const RevocationBody = z
  .object({ kind: z.enum(['jti', 'sub', 'rule', 'kid']), value: Id, reason: z.string().max(512).default('') })
  .strict();

export const AfterQuery = z
  .object({ after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0) })
  .strict();

export const PrincipalBody = z
  .object({
    id: Id,
    uid: z.number().int().min(0).max(4_294_967_295),
    groups: z.array(Id).max(256).default([]),
    capabilities: z.array(Id).max(256).default([]),
    admin: z.boolean().default(false),
    attributes: z.record(Id, Token).default({}),
    disabled: z.boolean().default(false),
  })
  .strict();

export const GroupBody = z
  .object({ id: Id, capabilities: z.array(Id).max(256).default([]), description: z.string().max(1024).default('') })
  .strict();

export const DriverBody = z.object({ id: Id, attributes: z.record(Id, Token).default({}) }).strict();

const PortRange = z
  .object({ from: z.number().int().min(0).max(65_535), to: z.number().int().min(0).max(65_535) })
  .strict()
  .refine((r) => r.from <= r.to, { message: 'from must not exceed to' });

export const RuleBody = z
  .object({
    id: Id,
    who: z
      .object({
        users: z.array(Id).max(1024).default([]),
        groups: z.array(Id).max(256).default([]),
        capabilities: z.array(Id).max(256).default([]),
      })
      .strict(),
    dir: z.enum(['rx', 'tx']),
    layer: z.enum(['task', 'user', 'system']).default('task'),
    filter: z.string().min(1).max(4096).describe('pcap-filter template'),
    ports: z.array(PortRange).max(256).default([]),
    drivers: z.array(Id).max(1024).default([]),
    maxLifetimeSec: z.number().int().min(1).max(86_400),
    sharing: z.enum(['exclusive', 'shared', 'either']).default('either'),
    resource: z.string().min(1).max(256).optional(),
    description: z.string().max(1024).default(''),
  })
  .strict();

export const IdParams = z.object({ id: Id }).strict();
