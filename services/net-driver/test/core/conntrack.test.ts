import { extractFlowKey, FlowKey, FlowKeyStatus, TcpFlags } from '@exonet/wire';
import { describe, expect, it } from 'vitest';
import { Conntrack, LINUX_TIMEOUTS, TrackVerdict } from '../../src/core/conntrack.ts';
import { icmpEcho, icmpError, tcp, udp } from '../support/frames.ts';

const task = { src: '10.77.0.2', dst: '10.77.0.9' };
const peer = { src: '10.77.0.9', dst: '10.77.0.2' };

function key(frame: Uint8Array): FlowKey {
  const k = new FlowKey();
  expect(extractFlowKey(frame, k)).toBe(FlowKeyStatus.OK);
  return k;
}

function send(ct: Conntrack, frame: Uint8Array, owner: number, now: number) {
  return ct.transmit(frame, frame.length, key(frame), owner, now);
}

function recv(ct: Conntrack, frame: Uint8Array, now: number) {
  return ct.receive(frame, frame.length, key(frame), now);
}

describe('connection tracking', () => {
  it('gives a UDP flow opened from an ephemeral port its return traffic, and only that', () => {
    const ct = new Conntrack();
    expect(send(ct, udp({ ...task, sport: 40000, dport: 53 }), 7, 0)).toBe(TrackVerdict.OK);
    expect(recv(ct, udp({ ...peer, sport: 53, dport: 40000 }), 1000)).toBe(7);
    // Another port of the peer, or another source port: not this flow.
    expect(recv(ct, udp({ ...peer, sport: 54, dport: 40000 }), 1000)).toBe(-1);
    expect(recv(ct, udp({ ...peer, sport: 53, dport: 40001 }), 1000)).toBe(-1);
    // The same direction as the task sent is not "return traffic".
    expect(recv(ct, udp({ ...task, sport: 40000, dport: 53 }), 1000)).toBe(-1);
  });

  it('expires an unreplied UDP flow after 30 s and a replied one after 120 s, as Linux does', () => {
    const ct = new Conntrack();
    send(ct, udp({ ...task, sport: 40000, dport: 53 }), 1, 0);
    expect(recv(ct, udp({ ...peer, sport: 53, dport: 40000 }), 29_000)).toBe(1);
    // Replied: now a stream with the longer timeout from the last packet.
    expect(recv(ct, udp({ ...peer, sport: 53, dport: 40000 }), 29_000 + 119_000)).toBe(1);
    expect(recv(ct, udp({ ...peer, sport: 53, dport: 40000 }), 29_000 + 119_000 + 121_000)).toBe(-1);

    send(ct, udp({ ...task, sport: 40002, dport: 53 }), 1, 0);
    expect(recv(ct, udp({ ...peer, sport: 53, dport: 40002 }), LINUX_TIMEOUTS.udp * 1000 + 1)).toBe(-1);
  });

  it('refuses a frame on a flow that belongs to another task', () => {
    const ct = new Conntrack();
    send(ct, udp({ ...task, sport: 40000, dport: 53 }), 1, 0);
    expect(send(ct, udp({ ...task, sport: 40000, dport: 53 }), 2, 10)).toBe(TrackVerdict.OTHER_OWNER);
    expect(send(ct, udp({ ...peer, sport: 53, dport: 40000 }), 2, 10)).toBe(TrackVerdict.OTHER_OWNER);
    expect(send(ct, udp({ ...task, sport: 40000, dport: 53 }), 1, 10)).toBe(TrackVerdict.OK);
  });

  it('follows the TCP handshake and teardown with Linux timeouts', () => {
    const ct = new Conntrack();
    const out = { ...task, sport: 45000, dport: 80 };
    const back = { ...peer, sport: 80, dport: 45000 };
    send(ct, tcp({ ...out, flags: TcpFlags.SYN }), 3, 0);
    const state = () => ct.describe()[0]?.state;
    expect(state()).toBe('SYN_SENT');
    expect(recv(ct, tcp({ ...back, flags: TcpFlags.SYN | TcpFlags.ACK }), 10)).toBe(3);
    expect(state()).toBe('SYN_RECV');
    send(ct, tcp({ ...out, flags: TcpFlags.ACK }), 3, 20);
    expect(state()).toBe('ESTABLISHED');
    // Established flows live for days.
    expect(recv(ct, tcp({ ...back, flags: TcpFlags.ACK }), 3_600_000)).toBe(3);
    send(ct, tcp({ ...out, flags: TcpFlags.FIN | TcpFlags.ACK }), 3, 3_600_010);
    expect(state()).toBe('FIN_WAIT');
    recv(ct, tcp({ ...back, flags: TcpFlags.FIN | TcpFlags.ACK }), 3_600_020);
    expect(state()).toBe('LAST_ACK');
    send(ct, tcp({ ...out, flags: TcpFlags.ACK }), 3, 3_600_030);
    expect(state()).toBe('TIME_WAIT');
    expect(recv(ct, tcp({ ...back, flags: TcpFlags.ACK }), 3_600_030 + 121_000)).toBe(-1);
  });

  it('closes on RST and creates nothing for an untracked RST', () => {
    const ct = new Conntrack();
    send(ct, tcp({ ...task, sport: 45001, dport: 80, flags: TcpFlags.RST }), 1, 0);
    expect(ct.size).toBe(0);
    send(ct, tcp({ ...task, sport: 45001, dport: 80, flags: TcpFlags.SYN }), 1, 0);
    recv(ct, tcp({ ...peer, sport: 80, dport: 45001, flags: TcpFlags.RST }), 5);
    expect(ct.describe()[0]?.state).toBe('CLOSE');
    expect(recv(ct, tcp({ ...peer, sport: 80, dport: 45001, flags: TcpFlags.ACK }), 11_000)).toBe(-1);
  });

  it('routes an ICMP error quoting a flow to the flow’s task, and ICMP echo replies to the pinger', () => {
    const ct = new Conntrack();
    const probe = udp({ ...task, sport: 33434, dport: 33435 });
    send(ct, probe, 4, 0);
    const err = icmpError({ src: '10.77.0.1', dst: '10.77.0.2' }, 'dest-unreachable', probe);
    const k = key(err);
    expect(ct.icmpErrorOwner(err, err.length, k, new FlowKey(), 10)).toBe(4);
    const stranger = icmpError(
      { src: '10.77.0.1', dst: '10.77.0.2' },
      'time-exceeded',
      udp({ ...task, sport: 1, dport: 2 }),
    );
    expect(ct.icmpErrorOwner(stranger, stranger.length, key(stranger), new FlowKey(), 10)).toBe(-1);

    send(ct, icmpEcho(task, 'echo-request', 0x1234), 5, 0);
    expect(recv(ct, icmpEcho(peer, 'echo-reply', 0x1234), 10)).toBe(5);
    expect(recv(ct, icmpEcho(peer, 'echo-reply', 0x1235), 10)).toBe(-1);
  });

  it('keeps flows of one VLAN apart from another', () => {
    const ct = new Conntrack();
    send(ct, udp({ ...task, vlan: 10, sport: 40000, dport: 53 }), 1, 0);
    expect(recv(ct, udp({ ...peer, vlan: 11, sport: 53, dport: 40000 }), 1)).toBe(-1);
    expect(recv(ct, udp({ ...peer, vlan: 10, sport: 53, dport: 40000 }), 1)).toBe(1);
  });

  it('bounds the table per task and in all, and forgets a task at once', () => {
    const ct = new Conntrack({ maxFlows: 10, maxFlowsPerTask: 4 });
    for (let p = 0; p < 4; p++) expect(send(ct, udp({ ...task, sport: 40000 + p, dport: 53 }), 1, 0)).toBe(0);
    expect(send(ct, udp({ ...task, sport: 40010, dport: 53 }), 1, 0)).toBe(TrackVerdict.TABLE_FULL);
    for (let p = 0; p < 4; p++) send(ct, udp({ ...task, sport: 41000 + p, dport: 53 }), 2, 0);
    send(ct, udp({ ...task, sport: 42000, dport: 53 }), 3, 0);
    send(ct, udp({ ...task, sport: 42001, dport: 53 }), 3, 0);
    expect(ct.size).toBe(10);
    expect(send(ct, udp({ ...task, sport: 42002, dport: 53 }), 3, 0)).toBe(TrackVerdict.TABLE_FULL);
    // Expired flows make room.
    expect(send(ct, udp({ ...task, sport: 42002, dport: 53 }), 3, 31_000)).toBe(TrackVerdict.OK);
    expect(ct.size).toBe(1);
    expect(ct.removeTask(3)).toBe(1);
    expect(ct.size).toBe(0);
  });
});
