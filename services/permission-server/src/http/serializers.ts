/**
 * Response serialisation for the hot routes (grant issue and renew): the route's zod response schemas turned
 * into JSON Schema once and compiled by fast-json-stringify, instead of fastify-type-provider-zod's serializer,
 * which runs a zod parse of every response before JSON.stringify. The output keeps only the schema's members
 * (as zod's strip does) and a missing required member still throws; OpenAPI at /docs is unchanged (it reads
 * the zod schemas).
 */
import fastJson from 'fast-json-stringify';
import { type ZodType, z } from 'zod';

/** Route-level `serializerCompiler` for routes whose response schemas are zod schemas. */
export function fastSerializerCompiler({ schema }: { readonly schema: unknown }): (data: unknown) => string {
  return fastJson(z.toJSONSchema(schema as ZodType, { target: 'draft-7' }) as Parameters<typeof fastJson>[0]);
}
