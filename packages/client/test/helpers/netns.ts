import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { promisify } from 'node:util';
import { openUdpTunnelLink, type UdpTunnelLink } from '../../src/net/index.ts';

const run = promisify(execFile);

let counter = 0;

/** Namespaces still alive; removed on exit as a last resort if a suite dies before its afterAll. */
const live = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const ns of live) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  });
}

/** A free UDP port on 127.0.0.1 (bound and released; the tiny race is acceptable in tests). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * A Linux network namespace whose TAP device is bridged by socat to UDP datagrams on 127.0.0.1, and our end
 * of the tunnel as a FrameLink. Linux owns `peerIp` inside the namespace.
 */
export interface NetnsTunnel {
  readonly ns: string;
  readonly tap: string;
  readonly peerIp: string;
  readonly link: UdpTunnelLink;
  /** Runs a command inside the namespace; never rejects (the exit code is returned). */
  exec(cmd: string, args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /** Starts a long-running command inside the namespace (killed by close()). */
  spawn(cmd: string, args: string[]): ChildProcess;
  close(): Promise<void>;
}

/**
 * Creates the namespace, TAP and socat bridge; `mac` is our side's MAC; `ipv6` an address/prefix for Linux.
 * Retried a few times: the UDP port picked for socat can be taken by someone else before socat binds it.
 */
export async function createNetnsTunnel(mac: Uint8Array, opts: { ipv6?: string } = {}): Promise<NetnsTunnel> {
  let last: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return await attemptNetnsTunnel(mac, opts);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

async function attemptNetnsTunnel(mac: Uint8Array, opts: { ipv6?: string }): Promise<NetnsTunnel> {
  const id = `${process.pid % 100000}x${counter++}`;
  const ns = `exonet-t${id}`;
  const tap = `exo${id}`.slice(0, 15);
  const peerIp = '10.77.0.1';
  const children: ChildProcess[] = [];
  let socat: ChildProcess | null = null;
  let link: UdpTunnelLink | null = null;
  const cleanup = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (socat && socat.exitCode === null && socat.signalCode === null) socat.kill('SIGKILL');
    link?.close();
    await run('ip', ['netns', 'del', ns]).catch(() => {});
    await run('ip', ['link', 'del', tap]).catch(() => {});
    live.delete(ns);
  };
  try {
    installExitHook();
    await run('ip', ['netns', 'add', ns]);
    live.add(ns);
    const theirPort = await freeUdpPort();
    link = await openUdpTunnelLink({ mac, localPort: 0, remoteHost: '127.0.0.1', remotePort: theirPort });
    const ourPort = link.localPort;
    // socat creates the TAP in our namespace; we then move it into the test namespace, where Linux owns it.
    socat = spawn(
      'socat',
      [`TUN,tun-type=tap,iff-no-pi,tun-name=${tap}`, `UDP-DATAGRAM:127.0.0.1:${ourPort},bind=127.0.0.1:${theirPort}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    socat.on('error', () => {}); // reported by the TAP never appearing
    let appeared = false;
    for (let i = 0; i < 400 && !appeared; i++) {
      appeared = await run('ip', ['link', 'show', tap]).then(
        () => true,
        () => false,
      );
      if (!appeared) await new Promise((r) => setTimeout(r, 50));
    }
    if (!appeared) throw new Error(`socat did not create ${tap}`);
    await run('ip', ['link', 'set', tap, 'netns', ns]);
    if (opts.ipv6) {
      // Make sure IPv6 is on for the device whatever the namespace defaults are; nodad: usable at once,
      // without waiting for duplicate address detection.
      await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${tap}.disable_ipv6=0`]).catch(() => {});
      await run('ip', ['-n', ns, 'addr', 'add', opts.ipv6, 'dev', tap, 'nodad']);
    } else {
      // Keep Linux's IPv6 autoconfiguration quiet when the test speaks only IPv4.
      await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${tap}.disable_ipv6=1`]).catch(() => {});
    }
    await run('ip', ['-n', ns, 'addr', 'add', `${peerIp}/24`, 'dev', tap]);
    await run('ip', ['-n', ns, 'link', 'set', tap, 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    if (socat.exitCode !== null || socat.signalCode !== null) throw new Error('socat exited during setup');
  } catch (err) {
    await cleanup();
    throw err;
  }
  const theLink = link!;
  return {
    ns,
    tap,
    peerIp,
    link: theLink,
    exec(cmd, args, opts = {}) {
      return new Promise((resolve) => {
        const child = execFile(
          'ip',
          ['netns', 'exec', ns, cmd, ...args],
          { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20, encoding: 'utf8' },
          (err, stdout, stderr) => {
            const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
            resolve({ stdout, stderr, code });
          },
        );
        children.push(child);
        child.stdin?.on('error', () => {});
        if (opts.input !== undefined) child.stdin?.end(opts.input);
        else child.stdin?.end();
      });
    },
    spawn(cmd, args) {
      const c = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      c.on('error', () => {});
      c.stdin?.on('error', () => {}); // EPIPE when the command exits before reading its input
      children.push(c);
      return c;
    },
    close: cleanup,
  };
}
