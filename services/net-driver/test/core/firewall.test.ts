import { describe, expect, it } from 'vitest';
import { Firewall, FirewallConfigError } from '../../src/core/firewall.ts';
import { tcp, udp } from '../support/frames.ts';

const dns = udp({ src: '10.77.0.2', dst: '10.77.0.1', sport: 40000, dport: 53 });
const smtp = tcp({ src: '10.77.0.2', dst: '192.0.2.25', sport: 40001, dport: 25, flags: 2 });
const web = tcp({ src: '10.77.0.2', dst: '192.0.2.80', sport: 40002, dport: 80, flags: 2 });

describe('system firewall', () => {
  it('lets the first matching rule decide, in order', () => {
    const fw = new Firewall({
      rules: [
        { action: 'allow', filter: 'tcp dst port 25 and dst host 192.0.2.25' },
        { action: 'deny', filter: 'tcp dst port 25' },
        { action: 'deny', filter: 'udp', dir: 'rx' },
      ],
    });
    expect(fw.allowsTx(smtp, smtp.length)).toBe(true);
    const otherSmtp = tcp({ src: '10.77.0.2', dst: '192.0.2.26', sport: 1, dport: 25, flags: 2 });
    expect(fw.allowsTx(otherSmtp, otherSmtp.length)).toBe(false);
    expect(fw.allowsTx(dns, dns.length)).toBe(true);
    expect(fw.allowsRx(dns, dns.length)).toBe(false);
    expect(fw.describe().map((r) => r.denied)).toEqual([0, 1, 1]);
  });

  it('applies the default to frames no rule matches', () => {
    const closed = new Firewall({ rules: [{ action: 'allow', filter: 'udp port 53' }], default: 'deny' });
    expect(closed.allowsTx(dns, dns.length)).toBe(true);
    expect(closed.allowsTx(web, web.length)).toBe(false);
    expect(new Firewall().allowsTx(web, web.length)).toBe(true);
  });

  it('judges only the frame, not stale bytes after it in the buffer', () => {
    const fw = new Firewall({ rules: [{ action: 'deny', filter: 'tcp dst port 80' }] });
    const buffer = new Uint8Array(2048);
    buffer.set(web);
    expect(fw.allowsTx(buffer, web.length)).toBe(false);
    // Truncated before the port: the filter reads out of bounds and does not match.
    expect(fw.allowsTx(buffer, 30)).toBe(true);
  });

  it('names the rule and the problem in a bad configuration', () => {
    const bad: [unknown, RegExp][] = [
      [{ rules: [{ action: 'drop', filter: 'udp' }] }, /rule 0: action/],
      [{ rules: [{ action: 'deny', filter: 'udp port' }] }, /rule 0: filter "udp port"/],
      [
        {
          rules: [
            { action: 'deny', filter: 'udp' },
            { action: 'allow', filter: 'tcp', dir: 'up' },
          ],
        },
        /rule 1: dir/,
      ],
      [{ rules: 'none' }, /expected \{ rules/],
      [{ rules: [], default: 'maybe' }, /default/],
    ];
    for (const [config, message] of bad) {
      expect(() => new Firewall(config as never)).toThrow(FirewallConfigError);
      expect(() => new Firewall(config as never)).toThrow(message);
    }
  });
});
