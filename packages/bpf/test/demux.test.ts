import { describe, expect, it } from 'vitest';
import { packetSet } from '../src/bench/packets.ts';
import { compileExpression, compileProgram, DemuxIndex, summarize } from '../src/index.ts';
import { CORPUS } from './_corpus.ts';

describe('DemuxIndex', () => {
  const packets = packetSet(400, 12);

  it('never misses a filter that accepts a packet (the whole corpus installed at once)', () => {
    const index = new DemuxIndex();
    const filters = CORPUS.map((e, i) => ({ id: `f${i}`, run: compileProgram(compileExpression(e)), e }));
    for (const [i, e] of CORPUS.entries()) index.add(`f${i}`, summarize(compileExpression(e)));
    let candidates = 0;
    for (const pk of packets) {
      const c = index.candidates(pk.data);
      candidates += c.size;
      for (const f of filters) {
        if (f.run(pk.data, pk.wirelen, pk.data.length) !== 0) expect(c.has(f.id), `${f.e}`).toBe(true);
      }
    }
    expect(candidates).toBeLessThan(packets.length * CORPUS.length * 0.6);
  });

  it('picks out one filter among a thousand port filters with a handful of lookups', () => {
    const index = new DemuxIndex();
    for (let port = 1000; port < 2000; port++)
      index.add(`p${port}`, summarize(compileExpression(`tcp dst port ${port}`)));
    expect(index.fieldCount).toBeLessThanOrEqual(2);
    const frame = new Uint8Array(54);
    frame.set([0x08, 0x00], 12);
    frame[14] = 0x45;
    frame[23] = 6;
    frame.set([0x05, 0xdc], 14 + 20 + 2); // dst port 1500
    expect([...index.candidates(frame)]).toEqual(['p1500']);
    index.remove('p1500');
    expect(index.candidates(frame).size).toBe(0);
  });

  it('keeps wildcard filters as candidates for every packet', () => {
    const index = new DemuxIndex();
    index.add('all', summarize(compileExpression('not arp')));
    index.add('none', summarize(compileExpression('ip and arp')));
    expect([...index.candidates(new Uint8Array(0))]).toEqual(['all']);
  });
});
