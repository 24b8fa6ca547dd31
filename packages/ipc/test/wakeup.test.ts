import { describe, expect, it } from 'vitest';
import { explore } from './wakeup-model.ts';

describe('wake-up protocol, every interleaving', () => {
  for (const [messages, capacity, rings] of [
    [6, 1, 1],
    [6, 2, 1],
    [5, 3, 1],
    [6, 1, 2],
    [6, 2, 2],
  ]) {
    it(`loses no wake-up: ${messages} messages, capacity ${capacity}, ${rings} ring(s) on one bell`, () => {
      const r = explore({ messages, capacity, rings });
      expect(r.lostWakeup).toBeUndefined();
      expect(r.states).toBeGreaterThan(100);
    });
  }

  // The checker is only worth something if it catches the classic mistakes.
  for (const bug of ['no-recheck', 'bell-read-late', 'flag-before-publish'] as const) {
    it(`finds the lost wake-up of a broken variant: ${bug}`, () => {
      const r = explore({ messages: 4, capacity: 1, rings: 1, bug });
      expect(r.lostWakeup).toBeDefined();
    });
  }
});
