import { extractFlowKey, FlowKey, FlowKeyStatus } from '@exonet/wire';
import { describe, expect, it } from 'vitest';
import { FragmentTracker } from '../../src/core/fragments.ts';
import { ethernet, ipv4 } from '../support/frames.ts';

const e = { src: '10.77.0.9', dst: '10.77.0.2' };

function fragment(ident: number, offset: number, more: boolean, src = e.src): { frame: Uint8Array; key: FlowKey } {
  const frame = ethernet(
    e,
    0x0800,
    ipv4({ ...e, src }, 17, new Uint8Array(24), { ident, fragmentOffset: offset, moreFragments: more }),
  );
  const key = new FlowKey();
  const status = extractFlowKey(frame, key);
  expect(status).toBe(offset === 0 ? FlowKeyStatus.OK : FlowKeyStatus.FRAGMENT);
  return { frame, key };
}

describe('fragments follow the first', () => {
  it('delivers later fragments to the tasks that got the first, and to no one else', () => {
    const ft = new FragmentTracker(16);
    const first = fragment(77, 0, true);
    expect(first.key.fragId).toBe(77);
    const entry = ft.begin(first.key, 0);
    ft.add(entry, 3);
    ft.add(entry, 5);
    ft.add(entry, 3);
    const got: number[] = [];
    expect(ft.follow(fragment(77, 24, true).key, 10, (t) => got.push(t))).toBe(2);
    expect(got).toEqual([3, 5]);
    expect(ft.follow(fragment(78, 24, false).key, 10, () => {})).toBe(0);
    expect(ft.follow(fragment(77, 24, false, '10.77.0.8').key, 10, () => {})).toBe(0);
    // After the reassembly lifetime nothing follows.
    expect(ft.follow(fragment(77, 48, false).key, 30_001, () => {})).toBe(0);
  });

  it('forgets a task that died', () => {
    const ft = new FragmentTracker(16);
    const entry = ft.begin(fragment(9, 0, true).key, 0);
    ft.add(entry, 1);
    ft.add(entry, 2);
    ft.removeTask(1);
    const got: number[] = [];
    ft.follow(fragment(9, 8, false).key, 1, (t) => got.push(t));
    expect(got).toEqual([2]);
  });

  it('never confuses datagrams under heavy churn (full key compared)', () => {
    const ft = new FragmentTracker(4);
    for (let id = 0; id < 500; id++) ft.add(ft.begin(fragment(id, 0, true).key, id), id);
    for (let id = 0; id < 500; id++) {
      ft.follow(fragment(id, 8, false).key, 500, (t) => expect(t).toBe(id));
    }
  });
});
