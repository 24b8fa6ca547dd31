import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { promisify } from 'node:util';

/*
 * A fresh Linux network namespace whose TAP device socat bridges to UDP datagrams on 127.0.0.1 (one Ethernet
 * frame a datagram): the far end of an `exonet up --wire udp:...` or of a task stack's UdpTunnelLink. Shared
 * by the suites that talk to the Linux stack. Needs root (CI runs as root).
 */

const run = promisify(execFile);

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

/** A free UDP port on 127.0.0.1 (bound and released; the small race is covered by the callers' retries). */
export async function freeUdpPort(): Promise<number> {
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

export interface NetnsBridge {
  readonly ns: string;
  readonly tap: string;
  /** Runs a command inside the namespace; never rejects (the exit code is returned). */
  exec(cmd: string, args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /** Starts a long-running command inside the namespace (killed by close()). */
  spawn(cmd: string, args: string[]): ChildProcess;
  close(): Promise<void>;
}

/**
 * Creates the namespace and a TAP device in it with `address` (e.g. 10.77.0.1/24) and, if given, the IPv6
 * `ipv6` (address/prefix), bridged by socat to UDP: socat listens on 127.0.0.1:`bridgePort` and sends to
 * 127.0.0.1:`exonetPort` (our end's local port). Throws (after cleaning up) when socat cannot bind or the TAP
 * never appears; callers retry with new ports.
 */
export async function createNetnsBridge(opts: {
  bridgePort: number;
  exonetPort: number;
  address: string;
  ipv6?: string;
}): Promise<NetnsBridge> {
  // Unique per run and per call: other suites (and other engineers' runs) create namespaces concurrently.
  const id = `${process.pid % 100_000}${randomBytes(2).toString('hex')}`;
  const ns = `exonet-up${id}`;
  const tap = `exu${id}`.slice(0, 15);
  const children: ChildProcess[] = [];
  let socatErr = '';
  const socat = spawn(
    'socat',
    [
      `TUN,tun-type=tap,iff-no-pi,tun-name=${tap}`,
      `UDP-DATAGRAM:127.0.0.1:${opts.exonetPort},bind=127.0.0.1:${opts.bridgePort}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  socat.on('error', (e) => {
    socatErr += String(e);
  });
  socat.stderr?.on('data', (d) => {
    socatErr += d;
  });
  let nsCreated = false;
  const close = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (socat.exitCode === null && socat.signalCode === null) {
      const gone = new Promise<void>((r) => socat.once('exit', () => r()));
      socat.kill('SIGKILL');
      await gone;
    }
    if (nsCreated) await run('ip', ['netns', 'del', ns]).catch(() => {});
    live.delete(ns);
    // The TAP goes with socat (or the namespace); this only covers a TAP that never moved.
    await run('ip', ['link', 'del', tap]).catch(() => {});
  };
  try {
    installExitHook();
    await run('ip', ['netns', 'add', ns]);
    nsCreated = true;
    live.add(ns);
    // socat creates the TAP in our namespace; it is moved into the test namespace, where Linux owns it.
    let appeared = false;
    for (let i = 0; i < 400 && !appeared; i++) {
      if (socat.exitCode !== null || socat.signalCode !== null) throw new Error(`socat exited: ${socatErr.trim()}`);
      appeared = await run('ip', ['link', 'show', tap]).then(
        () => true,
        () => false,
      );
      if (!appeared) await new Promise((r) => setTimeout(r, 50));
    }
    if (!appeared) throw new Error(`socat did not create ${tap}: ${socatErr.trim()}`);
    await run('ip', ['link', 'set', tap, 'netns', ns]);
    if (opts.ipv6) {
      // IPv6 on for the device whatever the namespace defaults are; nodad: usable at once, without waiting
      // for duplicate address detection.
      await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${tap}.disable_ipv6=0`]).catch(() => {});
      await run('ip', ['-n', ns, 'addr', 'add', opts.ipv6, 'dev', tap, 'nodad']);
    } else {
      // IPv4 only: keep Linux's IPv6 autoconfiguration chatter off the wire.
      await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${tap}.disable_ipv6=1`]).catch(() => {});
    }
    await run('ip', ['-n', ns, 'addr', 'add', opts.address, 'dev', tap]);
    await run('ip', ['-n', ns, 'link', 'set', tap, 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // socat binds its UDP side after opening the TAP: a port taken meanwhile shows up as an early exit.
    await new Promise((r) => setTimeout(r, 100));
    if (socat.exitCode !== null || socat.signalCode !== null) throw new Error(`socat exited: ${socatErr.trim()}`);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    ns,
    tap,
    exec(cmd, args, o = {}) {
      return new Promise((resolve) => {
        const child = execFile(
          'ip',
          ['netns', 'exec', ns, cmd, ...args],
          { timeout: o.timeoutMs ?? 60_000, maxBuffer: 64 << 20, encoding: 'utf8' },
          (err, stdout, stderr) => {
            const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
            resolve({ stdout, stderr, code });
          },
        );
        children.push(child);
        child.stdin?.on('error', () => {}); // EPIPE when the command exits before reading its input
        child.stdin?.end(o.input ?? '');
      });
    },
    spawn(cmd, args) {
      const c = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      c.on('error', () => {});
      c.stdin?.on('error', () => {}); // EPIPE when the command exits before reading its input
      children.push(c);
      return c;
    },
    close,
  };
}
