/**
 * Port names (`port http`, `portrange domain-http`) as libpcap resolves them: the system's services
 * database, a name of one protocol restricting the filter to it. Checked against libpcap's own compilation
 * on this machine's /etc/services (netbase; .ci/run installs it) and on a fixed table.
 */
import { describe, expect, it } from 'vitest';
import { pcapCompile, pcapFilter } from '../src/bench/libpcap-harness.ts';
import { packetSet } from '../src/bench/packets.ts';
import { compileExpression, interpret } from '../src/index.ts';
import { lookupService, parseServices } from '../src/pcap/services.ts';

const packets = packetSet(600, 21);

describe('port names', () => {
  const exprs = [
    'port http',
    'port www',
    'port ssh',
    'port domain',
    'tcp port domain',
    'udp src port domain',
    'dst port bootps',
    'port kerberos',
    'port ftp-data',
    'sctp port domain',
    'tcp src port http and udp dst port domain',
    'portrange http-https',
    'udp portrange http-https',
    'tcp portrange domain-bootps',
    'portrange ssh-22',
    'dst portrange domain-http',
  ];

  it("accepts exactly the packets libpcap's compilation accepts", () => {
    const theirs = pcapCompile(exprs, { optimize: false });
    const programs = theirs.map((t, i) => {
      if ('error' in t) throw new Error(`${exprs[i]}: libpcap refuses it here (${t.error}); is netbase installed?`);
      return t.program;
    });
    const values = pcapFilter(programs, packets);
    let accepted = 0;
    exprs.forEach((e, i) => {
      const ours = compileExpression(e);
      packets.forEach((pk, j) => {
        const v = interpret(ours, pk.data, pk.wirelen, pk.data.length);
        if (v !== values[i]![j]) throw new Error(`"${e}" packet ${j}: ours ${v}, libpcap ${values[i]![j]}`);
        if (v !== 0) accepted++;
      });
    });
    expect(accepted).toBeGreaterThan(0);
  });

  it('is the numbered filter for a name of both protocols, the protocol-qualified one for a name of one', () => {
    expect(compileExpression('port domain')).toEqual(compileExpression('port 53'));
    expect(compileExpression('port ssh')).toEqual(compileExpression('tcp port 22'));
    expect(compileExpression('port bootps')).toEqual(compileExpression('udp port 67'));
  });

  it("refuses with libpcap's messages: unknown names, a name of another protocol, a bad qualifier", () => {
    const theirs = pcapCompile(['port nosuchservice', 'udp port ssh', 'sctp portrange http-http', 'ip port http']);
    const ours = ['port nosuchservice', 'udp port ssh', 'sctp portrange http-http', 'ip port http'].map((e) => {
      try {
        compileExpression(e);
        return 'compiled';
      } catch (err) {
        return (err as Error).message.replace(/^position \d+: /, '');
      }
    });
    expect(ours).toEqual(theirs.map((t) => ('error' in t ? t.error : 'compiled')));
    expect(ours[0]).toBe("unknown port 'nosuchservice'");
    expect(() => compileExpression('portrange ssh-nosuch')).toThrow(/unknown port in range 'ssh-nosuch'/);
  });

  it('reads services(5) text: aliases, comments, the first entry of a name, one protocol or both', () => {
    const table = parseServices(
      [
        '# comment line',
        'web   8080/tcp  alt-web   # an alias',
        'web   8080/udp',
        'feed  9000/udp',
        'feed  9001/udp          # a later entry of the same name and protocol is ignored',
        'odd   700/tcp',
        'odd   701/udp',
        'junk  notaport/tcp',
        'big   70000/tcp',
      ].join('\n'),
    );
    expect(lookupService('web', table)).toEqual({ port: 8080, proto: undefined });
    expect(lookupService('alt-web', table)).toEqual({ port: 8080, proto: 'tcp' });
    expect(lookupService('feed', table)).toEqual({ port: 9000, proto: 'udp' });
    expect(lookupService('odd', table)).toEqual({ port: 700, proto: 'tcp' });
    expect(lookupService('junk', table)).toBeUndefined();
    expect(lookupService('big', table)).toBeUndefined();
    expect(lookupService('nothing', table)).toBeUndefined();
  });
});
