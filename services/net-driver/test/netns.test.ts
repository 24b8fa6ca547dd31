import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createInThreadNic } from '../src/nic/in-thread.ts';
import { UdpWire } from '../src/wire/udp.ts';

/**
 * The Linux stack in a network namespace is the model's link partner: a TAP device (made by socat, which
 * bridges it to UDP datagrams, one frame each) is moved into the namespace; our side is the RTL8169 model and
 * its driver on a UDP wire. tcpdump in the namespace sees what our NIC sends; our driver receives the
 * namespace's ARP requests and, once the test answers one, its ICMP echo requests. Runs as root (CI is root).
 */

const exec = promisify(execFile);
const OUR_MAC = Uint8Array.of(0x00, 0xe0, 0x4c, 0x12, 0x34, 0x56);
const OUR_MAC_TEXT = '00:e0:4c:12:34:56';

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Waits for `cond` to hold, polling; fails with `what` after `ms` (a bound on a hang, not a timing test). */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function arpReply(request: Uint8Array, ourIp: number[]): Uint8Array {
  const f = new Uint8Array(60);
  f.set(request.subarray(6, 12), 0); // to the asker
  f.set(OUR_MAC, 6);
  f.set([0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2], 12);
  f.set(OUR_MAC, 22); // sender hardware address
  f.set(ourIp, 28); // sender protocol address
  f.set(request.subarray(22, 28), 32); // target hardware address = the asker
  f.set(request.subarray(28, 32), 38); // target protocol address = the asker's IP
  return f;
}

describe('a Linux network namespace as the link partner (TAP + socat + UDP wire)', () => {
  it('sees our frames in tcpdump, and we receive its ARP requests and, once answered, its pings', async () => {
    const tag = randomBytes(3).toString('hex');
    const ns = `exonet-${tag}`;
    const tap = `exo${tag}`;
    const subnet = 100 + (randomBytes(1)[0] % 100);
    const nsIp = `10.${subnet}.${randomBytes(1)[0]}.1`;
    const ourIp = nsIp.split('.').map(Number);
    ourIp[3] = 2;
    const ourIpText = ourIp.join('.');
    let socat: ChildProcess | undefined;
    let tcpdump: ChildProcess | undefined;
    let ping: ChildProcess | undefined;
    let nsCreated = false;
    const socatPort = await freeUdpPort();
    const wire = await UdpWire.open(0, '127.0.0.1', socatPort);
    const nic = createInThreadNic({ wire, mac: OUR_MAC });
    try {
      await exec('ip', ['netns', 'add', ns]);
      nsCreated = true;
      socat = spawn(
        'socat',
        [
          `TUN,tun-type=tap,iff-no-pi,tun-name=${tap},iff-up`,
          `UDP-DATAGRAM:127.0.0.1:${wire.localPort},bind=127.0.0.1:${socatPort}`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let socatErr = '';
      socat.stderr?.on('data', (d) => {
        socatErr += d;
      });
      await until(`socat to create ${tap} (${socatErr})`, async () => {
        if (socat?.exitCode !== null) throw new Error(`socat exited: ${socatErr}`);
        return exec('ip', ['link', 'show', tap]).then(
          () => true,
          () => false,
        );
      });
      await exec('ip', ['link', 'set', tap, 'netns', ns]);
      await exec('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await exec('ip', ['-n', ns, 'addr', 'add', `${nsIp}/24`, 'dev', tap]);
      await exec('ip', ['-n', ns, 'link', 'set', tap, 'up']);

      tcpdump = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', tap, '-n', '-e', '-l', '-U'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let dump = '';
      let dumpErr = '';
      tcpdump.stdout?.on('data', (d) => {
        dump += d;
      });
      tcpdump.stderr?.on('data', (d) => {
        dumpErr += d;
      });
      await until('tcpdump to listen', () => {
        if (tcpdump?.exitCode !== null) throw new Error(`tcpdump exited: ${dumpErr}`);
        return dumpErr.includes('listening on');
      });

      // Our driver receives whatever the namespace sends.
      const received: Uint8Array[] = [];
      const { driver } = nic;
      let answering = false;
      const isArpRequestForUs = (f: Uint8Array) =>
        f.length >= 42 &&
        f[12] === 0x08 &&
        f[13] === 0x06 &&
        f[21] === 1 &&
        f.subarray(38, 42).every((b, i) => b === ourIp[i]);
      driver.setEventHandler(() => {
        driver.receive((f, n) => {
          const copy = f.slice(0, n);
          received.push(copy);
          // Once answering, answer every request (the kernel may retry while we are slow).
          if (answering && isArpRequestForUs(copy)) driver.transmit(arpReply(copy, ourIp));
        });
        driver.txCommit();
      });
      driver.start();

      // 1. A crafted frame out of our NIC shows up in tcpdump inside the namespace.
      const hello = new Uint8Array(60);
      hello.fill(0xff, 0, 6);
      hello.set(OUR_MAC, 6);
      hello.set([0x88, 0xb5], 12);
      hello.set(new TextEncoder().encode('exonet says hello'), 14);
      expect(driver.transmit(hello)).toBe(true);
      driver.txCommit();
      await until('tcpdump to show our frame', () => dump.includes(`${OUR_MAC_TEXT} > ff:ff:ff:ff:ff:ff`));
      expect(dump).toMatch(/ethertype Unknown \(0x88b5\), length 60/);

      // 2. The namespace pings our address: its ARP request reaches our driver.
      // Long enough to outlast every wait below; stopped in `finally`.
      ping = spawn('ip', ['netns', 'exec', ns, 'ping', '-c', '300', '-i', '0.2', '-W', '1', ourIpText], {
        stdio: 'ignore',
      });
      await until('the namespace ARP request', () => received.some(isArpRequestForUs));
      const request = received.find(isArpRequestForUs)!;
      expect([...request.subarray(0, 6)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

      // 3. We answer it (and any retry); the namespace then sends its ICMP echo requests to our MAC.
      answering = true;
      expect(driver.transmit(arpReply(request, ourIp))).toBe(true);
      driver.txCommit();
      const isEchoRequest = (f: Uint8Array) =>
        f.length >= 42 &&
        f.subarray(0, 6).every((b, i) => b === OUR_MAC[i]) &&
        f[12] === 0x08 &&
        f[13] === 0x00 &&
        f[23] === 1 && // ICMP
        f[34] === 8 && // echo request
        f.subarray(30, 34).every((b, i) => b === ourIp[i]);
      await until('an ICMP echo request to our MAC', () => received.some(isEchoRequest));
      await until('tcpdump to show our ARP reply', () => dump.includes(`is-at ${OUR_MAC_TEXT}`));
      const { stdout: neigh } = await exec('ip', ['-n', ns, 'neigh', 'show', ourIpText]);
      expect(neigh).toContain(OUR_MAC_TEXT);
      expect(driver.counters().rxErrors).toBe(0);
    } finally {
      await stop(ping);
      await stop(tcpdump);
      await stop(socat);
      await nic.close();
      if (nsCreated) await exec('ip', ['netns', 'del', ns]).catch(() => {});
      await exec('ip', ['link', 'del', tap]).catch(() => {});
    }
  });
});
