/**
 * A real etcd cluster on loopback for tests, benchmarks and local experiments: N members (default 3) with temporary data directories, free
 * ports, a unique cluster token and fast election settings. Members can be killed and restarted one by one
 * or all at once; `stop()` always kills every process and removes the data directories (and an exit hook
 * kills them too if a test run dies before `stop()`).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where the etcd binary lives (Debian's etcd-server); override with EXONET_ETCD_BIN. */
const etcdBinary = process.env.EXONET_ETCD_BIN ?? '/usr/bin/etcd';

/** Every process any harness started in this process, killed on exit as a last resort. */
const livePids = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/**
 * A watchdog shell per cluster: when the process that started the cluster dies without `stop()` (a test
 * worker killed on timeout never runs exit handlers), it kills the members still listed in `ROOT/pids`
 * (kept current by the harness, so no recycled pid is hit) and removes the data directories.
 */
const WATCHDOG = `
parent=$1; root=$2
while kill -0 "$parent" 2>/dev/null && [ -d "$root" ]; do sleep 1; done
if [ -d "$root" ]; then
  [ -s "$root/pids" ] && kill -9 $(cat "$root/pids") 2>/dev/null
  rm -rf "$root"
fi
`;

/** Asks the kernel for a free TCP port on loopback (the port is released again before etcd binds it). */
async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One member of the cluster. */
export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
}

/** Options of {@link EtcdCluster.start}. */
export interface EtcdClusterOptions {
  /** Number of members (default 3). */
  readonly size?: number;
  /** Raft heartbeat in ms (default 50: fast failover for tests). */
  readonly heartbeatMs?: number;
  /** Election timeout in ms (default 500). */
  readonly electionMs?: number;
  /** How long to wait for the cluster to become healthy (default 30 s). */
  readonly startTimeoutMs?: number;
  /**
   * Serve clients over TLS with client-certificate authentication (certificates made with openssl: a
   * throw-away CA, a server certificate for 127.0.0.1 and a client certificate; see `tlsFiles`).
   */
  readonly tls?: boolean;
}

/** PEM files of a TLS cluster: the CA and a client certificate and key it signed. */
export interface EtcdTlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Makes a throw-away CA, a server certificate for 127.0.0.1 and a client certificate under `dir`. */
function makeCertificates(dir: string): EtcdTlsFiles & { serverCert: string; serverKey: string } {
  const f = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=exonet-test-ca');
  for (const [who, usage] of [
    ['server', 'serverAuth,clientAuth'],
    ['client', 'clientAuth'],
  ] as const) {
    writeFileSync(f(`${who}.ext`), `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
    ssl('req', ...ec, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who}`);
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${who}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${who}.crt`),
      '-days',
      '2',
      '-extfile',
      f(`${who}.ext`),
    );
  }
  return {
    ca: f('ca.crt'),
    cert: f('client.crt'),
    key: f('client.key'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
  };
}

/** A running (or partly killed) etcd cluster. */
export class EtcdCluster {
  private readonly processes: (ChildProcess | null)[];
  private watchdog: ChildProcess | null = null;

  private constructor(
    readonly members: readonly EtcdMember[],
    private readonly root: string,
    private readonly token: string,
    private readonly options: Required<EtcdClusterOptions>,
    private readonly tls?: EtcdTlsFiles & { serverCert: string; serverKey: string },
  ) {
    this.processes = members.map(() => null);
  }

  /** The CA and a client certificate and key, for a cluster started with `tls: true`. */
  get tlsFiles(): EtcdTlsFiles | undefined {
    return this.tls ? { ca: this.tls.ca, cert: this.tls.cert, key: this.tls.key } : undefined;
  }

  /** Client URLs of every member, in member order (what a store or `--store etcd:` takes). */
  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /**
   * Starts a fresh cluster and waits until every member reports healthy. Retries with new ports if a port
   * was taken between choosing and binding it.
   */
  static async start(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    installExitHook();
    const opts: Required<EtcdClusterOptions> = {
      size: options.size ?? 3,
      heartbeatMs: options.heartbeatMs ?? 50,
      electionMs: options.electionMs ?? 500,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
      tls: options.tls ?? false,
    };
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const root = mkdtempSync(join(tmpdir(), 'exonet-etcd-'));
      const tls = opts.tls ? makeCertificates(root) : undefined;
      const scheme = tls ? 'https' : 'http';
      const members: EtcdMember[] = [];
      for (let i = 0; i < opts.size; i++) {
        const name = `m${i}`;
        members.push({
          name,
          clientUrl: `${scheme}://127.0.0.1:${await freePort()}`,
          peerUrl: `http://127.0.0.1:${await freePort()}`,
          dataDir: join(root, name),
          logFile: join(root, `${name}.log`),
        });
      }
      const cluster = new EtcdCluster(members, root, `exonet-${randomBytes(6).toString('hex')}`, opts, tls);
      try {
        cluster.startWatchdog();
        for (let i = 0; i < members.length; i++) cluster.spawnMember(i);
        await cluster.waitHealthy(opts.startTimeoutMs);
        return cluster;
      } catch (err) {
        lastError = err;
        await cluster.stop();
      }
    }
    throw new Error(`etcd cluster did not start: ${lastError instanceof Error ? lastError.message : lastError}`);
  }

  private startWatchdog(): void {
    const dog = spawn('sh', ['-c', WATCHDOG, 'etcd-watchdog', String(process.pid), this.root], {
      stdio: 'ignore',
      detached: true,
    });
    dog.unref();
    this.watchdog = dog;
  }

  /** Records the live member pids for the watchdog. */
  private writePids(): void {
    const pids = this.processes.flatMap((p) => (p?.pid !== undefined ? [p.pid] : []));
    try {
      writeFileSync(join(this.root, 'pids'), pids.join(' '));
    } catch {
      // the root is gone: stopped
    }
  }

  private spawnMember(i: number): void {
    const m = this.members[i];
    const initialCluster = this.members.map((x) => `${x.name}=${x.peerUrl}`).join(',');
    const log = openSync(m.logFile, 'a');
    const child = spawn(
      etcdBinary,
      [
        '--name',
        m.name,
        '--data-dir',
        m.dataDir,
        '--listen-client-urls',
        m.clientUrl,
        '--advertise-client-urls',
        m.clientUrl,
        '--listen-peer-urls',
        m.peerUrl,
        '--initial-advertise-peer-urls',
        m.peerUrl,
        '--initial-cluster',
        initialCluster,
        // A restarted member has its data dir and ignores these, so "new" is right for every start.
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        this.token,
        '--heartbeat-interval',
        String(this.options.heartbeatMs),
        '--election-timeout',
        String(this.options.electionMs),
        '--snapshot-count',
        '10000',
        ...(this.tls
          ? [
              '--cert-file',
              this.tls.serverCert,
              '--key-file',
              this.tls.serverKey,
              '--trusted-ca-file',
              this.tls.ca,
              '--client-cert-auth',
            ]
          : []),
        '--logger',
        'zap',
        '--log-level',
        'warn',
      ],
      {
        stdio: ['ignore', log, log],
        // etcd 3.4 refuses to start on arm64 unless told that the architecture is fine.
        env: process.arch === 'arm64' ? { ...process.env, ETCD_UNSUPPORTED_ARCH: 'arm64' } : process.env,
      },
    );
    closeSync(log);
    if (child.pid !== undefined) livePids.add(child.pid);
    child.once('exit', () => {
      if (child.pid !== undefined) livePids.delete(child.pid);
      if (this.processes[i] === child) this.processes[i] = null;
      this.writePids();
    });
    this.processes[i] = child;
    this.writePids();
  }

  /** True while member `i`'s process runs. */
  isRunning(i: number): boolean {
    return this.processes[i] !== null;
  }

  /** Kills member `i` (SIGKILL by default: a crash, not a clean shutdown) and waits until it is gone. */
  async killMember(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.processes[i];
    if (!child) return;
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.kill(signal);
    await exited;
    this.processes[i] = null;
  }

  /** Restarts member `i` on its old ports and data directory. Does not wait for health. */
  startMember(i: number): void {
    if (this.processes[i]) return;
    this.spawnMember(i);
  }

  /** Kills every member. */
  async killAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.killMember(i, signal)));
  }

  /** Restarts every stopped member and waits until all are healthy. */
  async startAll(timeoutMs = this.options.startTimeoutMs): Promise<void> {
    for (let i = 0; i < this.members.length; i++) this.startMember(i);
    await this.waitHealthy(timeoutMs);
  }

  /** A JSON request to a member's HTTP gateway (with the client certificate on a TLS cluster). */
  private requestJson(url: string, body?: string): Promise<unknown> {
    const u = new URL(url);
    const tls = this.tls;
    return new Promise((resolve, reject) => {
      const options = {
        method: body === undefined ? 'GET' : 'POST',
        timeout: 2000,
        ...(tls ? { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) } : {}),
      };
      const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, options, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => {
          try {
            resolve(JSON.parse(text));
          } catch (err) {
            reject(err);
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Whether member `i` answers /health with a leader and no alarm. */
  async memberHealthy(i: number): Promise<boolean> {
    try {
      const body = (await this.requestJson(`${this.members[i].clientUrl}/health`)) as { health?: string };
      return body.health === 'true';
    } catch {
      return false;
    }
  }

  /** Index of the current raft leader among the running members (rejects when none answers with one). */
  async leader(): Promise<number> {
    const ids: (string | undefined)[] = [];
    let leader: string | undefined;
    for (let i = 0; i < this.members.length; i++) {
      if (!this.isRunning(i)) {
        ids.push(undefined);
        continue;
      }
      try {
        const status = (await this.requestJson(`${this.members[i].clientUrl}/v3/maintenance/status`, '{}')) as {
          header?: { member_id?: string };
          leader?: string;
        };
        ids.push(status.header?.member_id);
        if (status.leader && status.leader !== '0') leader = status.leader;
      } catch {
        ids.push(undefined);
      }
    }
    const index = leader === undefined ? -1 : ids.indexOf(leader);
    if (index < 0) throw new Error('no etcd leader among the running members');
    return index;
  }

  /** Waits until every running member is healthy (rejects after `timeoutMs` with the members' log tails). */
  async waitHealthy(timeoutMs = this.options.startTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.members.map((_, i) => i).filter((i) => this.isRunning(i));
      if (running.length === 0) throw new Error('no etcd member is running');
      const health = await Promise.all(running.map((i) => this.memberHealthy(i)));
      if (health.every(Boolean)) return;
      if (Date.now() > deadline) {
        const tails = this.members
          .map((m) => `${m.name}: ${existsSync(m.logFile) ? readFileSync(m.logFile, 'utf8').slice(-600) : ''}`)
          .join('\n');
        throw new Error(`etcd members not healthy within ${timeoutMs} ms\n${tails}`);
      }
      await sleep(100);
    }
  }

  /** Kills every member and removes the data directories. Safe to call twice. */
  async stop(): Promise<void> {
    await this.killAll();
    rmSync(this.root, { recursive: true, force: true });
    // The watchdog sees the root gone and exits by itself; end it now anyway.
    if (this.watchdog?.pid !== undefined && this.watchdog.exitCode === null) {
      try {
        process.kill(this.watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.watchdog = null;
  }
}
