import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.ts';

describe('error catalogue', () => {
  it('documents every code in docs/rtl8169-model.md', () => {
    const doc = readFileSync(new URL('../../../docs/rtl8169-model.md', import.meta.url), 'utf8');
    for (const code of Object.keys(ERROR_CODES)) expect(doc, code).toContain(`\`${code}\``);
  });
});
