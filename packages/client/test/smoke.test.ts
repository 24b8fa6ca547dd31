import { describe, expect, it } from 'vitest';
import { createSim } from './helpers/sim.ts';

describe('smoke', () => {
  it('tcp hello', async () => {
    const sim = createSim();
    const l = sim.b.tcpListen(80);
    let got = '';
    const server = (async () => {
      const s = await l.accept();
      for await (const c of s) got += new TextDecoder().decode(c);
      await s.write('bye');
      await s.close();
    })();
    let reply = '';
    const client = (async () => {
      const s = await sim.a.tcpConnect('10.0.0.2', 80);
      await s.write('hello');
      s.end();
      for await (const c of s) reply += new TextDecoder().decode(c);
    })();
    let done = false;
    Promise.all([server, client]).then(() => {
      done = true;
    });
    await sim.until(() => done);
    expect(got).toBe('hello');
    expect(reply).toBe('bye');
    sim.close();
  });
});
