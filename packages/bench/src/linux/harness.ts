import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const source = new URL('./udp-harness.c', import.meta.url).pathname;

/** How the Linux side receives: N UDP sockets, or N AF_PACKET sockets with one classic BPF filter each. */
export type LinuxReceiveMode = 'udp' | 'af_packet';

/** One measurement of the Linux harness. */
export interface LinuxRunResult {
  readonly mode: LinuxReceiveMode;
  readonly receivers: number;
  readonly sent: number;
  readonly received: number;
  readonly seconds: number;
  /** Datagrams delivered to the receiving sockets per second. */
  readonly pps: number;
  /**
   * CPU seconds (user + system) the receiver and the sender used in the measured window: loopback's softirq
   * work is charged to whichever of them ran it (work done by ksoftirqd under load is not counted).
   */
  readonly cpuSeconds: number;
}

/**
 * Builds the C harness with gcc against libpcap (once per source version: the binary is cached under the
 * temporary folder by the hash of its source), and returns the binary's path.
 */
export async function buildLinuxHarness(): Promise<string> {
  const code = await readFile(source);
  const digest = createHash('sha256').update(code).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'exonet-bench');
  const binary = join(dir, `udp-harness-${digest}`);
  if (
    await stat(binary).then(
      () => true,
      () => false,
    )
  )
    return binary;
  await mkdir(dir, { recursive: true });
  const partial = `${binary}.${process.pid}.tmp`;
  try {
    await run('gcc', ['-O2', '-Wall', '-o', partial, source, '-lpcap']);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    throw new Error(`cannot build the Linux benchmark harness (needs gcc and libpcap-dev): ${stderr.trim()}`);
  }
  await rename(partial, binary);
  return binary;
}

/**
 * Runs the harness once: one sender process with sendmmsg round-robin over `receivers` ports on loopback,
 * one receiver with epoll and recvmmsg over `receivers` sockets. AF_PACKET needs root (CAP_NET_RAW).
 */
export async function runLinuxHarness(
  binary: string,
  mode: LinuxReceiveMode,
  receivers: number,
  seconds: number,
  basePort = 20000,
): Promise<LinuxRunResult> {
  const { stdout } = await run(binary, [mode, String(receivers), String(seconds), String(basePort)], {
    timeout: (seconds + 30) * 1000,
  });
  const line = stdout.trim().split('\n').pop() ?? '';
  const parsed = JSON.parse(line) as LinuxRunResult;
  if (parsed.mode !== mode || parsed.receivers !== receivers || !(parsed.seconds > 0)) {
    throw new Error(`unexpected output from the Linux harness: ${line}`);
  }
  return parsed;
}
