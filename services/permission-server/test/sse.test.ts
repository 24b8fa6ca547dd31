import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { boundedEventSender } from '../src/http/sse.ts';

describe('boundedEventSender', () => {
  it('writes while the queue stays under the bound, then cuts the client off once and writes nothing more', () => {
    // A real stream nobody reads: everything written stays queued.
    const out = new PassThrough({ highWaterMark: 16 });
    let overflows = 0;
    const send = boundedEventSender(out, 100, () => overflows++);
    expect(send('a'.repeat(60))).toBe(true);
    expect(send('b'.repeat(30))).toBe(true);
    expect(out.writableLength).toBe(90);
    expect(send('c'.repeat(20))).toBe(false);
    expect(send('d')).toBe(false);
    expect(overflows).toBe(1);
    expect(out.writableLength).toBe(90);
  });

  it('keeps writing to a client that reads', () => {
    const out = new PassThrough();
    const seen: Buffer[] = [];
    out.on('data', (c: Buffer) => seen.push(c));
    const send = boundedEventSender(out, 100, () => {
      throw new Error('a reading client is never cut off');
    });
    for (let i = 0; i < 50; i++) expect(send('x'.repeat(50))).toBe(true);
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        expect(Buffer.concat(seen).length).toBe(2500);
        resolve();
      }),
    );
  });
});
