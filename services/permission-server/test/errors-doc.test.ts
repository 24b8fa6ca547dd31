import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { serverErrors } from '../src/errors.ts';

const doc = readFileSync(new URL('../../../docs/permission-server.md', import.meta.url), 'utf8');

describe('error catalogue', () => {
  it.each(Object.entries(serverErrors))('%s is documented with its status', (code, { status }) => {
    expect(doc).toContain(`| \`${code}\` | ${status} |`);
  });

  it('every code has a client or server error status and the EXO_ERR_ prefix', () => {
    for (const [code, { status }] of Object.entries(serverErrors)) {
      expect(code).toMatch(/^EXO_ERR_[A-Z]+_[A-Z_]+$/);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
  });
});
