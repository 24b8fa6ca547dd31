import type { ChildProcess } from 'node:child_process';
import type { Worker } from 'node:worker_threads';
import { createKeySet, FeedFollower, type KeySet, RevocationSet } from '@exonet/grant';
import { type ChannelHandle, spawnProcess, spawnWorker } from '@exonet/ipc';
import { ExokernelCore } from '../core/exokernel.ts';
import { Firewall, type FirewallConfig } from '../core/firewall.ts';
import type { TaskSession } from '../core/task-session.ts';
import type { NetDevice } from '../driver/net-device.ts';
import { createInThreadNic, DEFAULT_MAC, type InThreadNic } from '../nic/in-thread.ts';
import { openWire } from '../wire/spec.ts';
import type { FrameSource, Wire } from '../wire/wire.ts';

/** How a driver service is configured (`exonet driver` flags and config file map onto this). */
export interface DriverServiceOptions {
  /** This driver's id: the `aud` its grants must carry. */
  readonly id: string;
  /** A wire specification (`udp:...`, `pcap:...`, `gen:...`, `loopback`, `null`) or an open wire. */
  readonly wire: string | Wire;
  /** Permission server base URLs (replicas): JWKS and the revocation feed come from them. */
  readonly servers?: readonly string[];
  /**
   * The issuer's JWKS document, for a driver without a server (tests, offline use): then no revocation feed
   * is followed and grants live until they expire.
   */
  readonly jwks?: unknown;
  /** Expected `iss` of grants and lists. */
  readonly issuer?: string;
  /** Fail closed when the last verified revocation list is older than this (ms). Default 60 s. */
  readonly stalenessBoundMs?: number;
  /** Grants living longer than this are refused (seconds). Default 86400. */
  readonly maxGrantLifetimeSec?: number;
  /** The system firewall. */
  readonly firewall?: FirewallConfig;
  /** Station address (default Realtek's OUI, 00:e0:4c:69:81:69). */
  readonly mac?: Uint8Array;
  /** How long start() waits for the first verified revocation list (ms, default 5000); 0 does not wait. */
  readonly feedWaitMs?: number;
  /** Test hook passed to the core. */
  readonly afterTxCopy?: (task: TaskSession, poolOffset: number) => void;
}

/** What `exonet driver status` shows. */
export interface DriverStatus {
  readonly id: string;
  readonly mac: string;
  readonly link: { up: boolean; speed: number };
  readonly suspended: boolean;
  readonly feed: { url: string | null; lastSeq: number; validUntil: number; staleSince: number | null } | null;
  readonly tasks: {
    id: number;
    principal: string;
    attachedAt: number;
    grants: { jti: string; dir: string; layer: string; excl: boolean; exp: number; rule: string }[];
    counters: Record<string, number>;
  }[];
  readonly counters: Record<string, number>;
  readonly device: Record<string, number>;
  readonly refusals: Record<string, number>;
  readonly removals: Record<string, number>;
  readonly firewall: { action: string; filter: string; dir: string; denied: number }[];
  readonly flows: number;
}

/**
 * A network driver service: an RTL8169 model and its driver, the exokernel core, the issuer's keys and the
 * revocation feed, and the loop that runs them. Tasks attach as worker threads or processes; the service is
 * their kernel: it names their principal at attach.
 */
export class DriverService {
  readonly core: ExokernelCore;
  readonly nic: InThreadNic;
  readonly follower: FeedFollower | null;
  readonly #tasks = new Set<Worker | ChildProcess>();
  #keys: KeySet | undefined;
  #running = true;
  #loop: Promise<void>;
  #wake: (() => void) | null = null;
  #jwksTimer: NodeJS.Timeout | undefined;
  /** A wire that produces frames only when asked (traffic generator, pcap replay). */
  readonly #source: FrameSource | undefined;

  private constructor(options: DriverServiceOptions, nic: InThreadNic, keys: KeySet | undefined, wire: Wire) {
    this.nic = nic;
    this.#source = 'pump' in wire ? (wire as unknown as FrameSource) : undefined;
    this.#keys = keys;
    const servers = options.servers ?? [];
    this.follower =
      servers.length > 0
        ? new FeedFollower({
            urls: servers,
            issuer: options.issuer,
            stalenessBoundMs: options.stalenessBoundMs ?? 60_000,
            jwks: async (url: string) => {
              const doc = await fetchJson(`${url}/.well-known/jwks.json`);
              this.#setKeys(doc);
              return doc;
            },
            onEntries: () => {
              this.core.applyRevocations();
              this.#wake?.();
            },
          })
        : null;
    const follower = this.follower;
    this.core = new ExokernelCore({
      driverId: options.id,
      device: nic.driver as NetDevice,
      keys: () => this.#keys,
      revocations: follower?.revocations ?? new RevocationSet(),
      feedFresh: follower ? () => follower.isFresh() : undefined,
      firewall: new Firewall(options.firewall ?? { rules: [] }),
      issuer: options.issuer,
      maxLifetimeSec: options.maxGrantLifetimeSec ?? 86_400,
      afterTxCopy: options.afterTxCopy,
    });
    nic.driver.setEventHandler(() => this.#wake?.());
    this.#loop = this.#run();
  }

  /**
   * Starts a driver: opens the wire, brings the NIC up, fetches the issuer's keys (from the first server
   * that answers, or `jwks`), starts following the revocation feed, and starts the loop.
   */
  static async start(options: DriverServiceOptions): Promise<DriverService> {
    if (typeof options.id !== 'string' || !/^[A-Za-z0-9._:@~-]{1,128}$/.test(options.id)) {
      throw new TypeError(`driver id: expected 1-128 characters [A-Za-z0-9._:@~-], got ${JSON.stringify(options.id)}`);
    }
    const mac = options.mac ?? DEFAULT_MAC;
    const wire = typeof options.wire === 'string' ? await openWire(options.wire, { mac }) : options.wire;
    const nic = createInThreadNic({ wire, mac });
    nic.driver.start();
    let keys: KeySet | undefined;
    if (options.jwks !== undefined) {
      const ks = createKeySet(options.jwks);
      if (!ks.ok) throw new TypeError(`jwks: ${ks.reason}`);
      keys = ks.keySet;
    }
    const service = new DriverService(options, nic, keys, wire);
    if (service.follower) {
      // Keys first (grants cannot install without them), then the feed.
      for (const url of options.servers ?? []) {
        try {
          service.#setKeys(await fetchJson(`${url}/.well-known/jwks.json`));
          break;
        } catch {
          // Try the next replica; the follower keeps trying too.
        }
      }
      service.follower.start();
      // Grants install only while the feed is fresh: give the first list a moment before declaring ready.
      const deadline = Date.now() + (options.feedWaitMs ?? 5000);
      while (!service.follower.isFresh() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      service.#jwksTimer = setInterval(() => void service.#refreshKeys(options.servers ?? []), 30_000);
      service.#jwksTimer.unref();
    }
    return service;
  }

  get id(): string {
    return this.core.driverId;
  }

  /** Attaches a task: its channel handle to give it. The caller vouches for the principal (it is the kernel). */
  attach(
    principal: string,
    transport: 'thread' | 'process' = 'thread',
  ): { session: TaskSession; handle: ChannelHandle } {
    const r = this.core.attach({ principal, transport });
    this.#wake?.();
    return r;
  }

  /**
   * Starts a task in a worker thread: `workerData` carries `{ handle, principal, driver, ...data }`. The task
   * is detached when the worker exits.
   */
  startWorkerTask(module: URL | string, principal: string, data: Record<string, unknown> = {}): Worker {
    const { session, handle } = this.attach(principal, 'thread');
    const worker = spawnWorker(module, { workerData: { ...data, handle, principal, driver: this.id } });
    this.#tasks.add(worker);
    worker.on('exit', () => {
      this.#tasks.delete(worker);
      this.core.detach(session.id);
    });
    worker.on('error', () => this.core.detach(session.id));
    return worker;
  }

  /**
   * Starts a task as a separate process over POSIX shared memory: it receives the channel's name in the
   * environment (EXONET_CHANNEL) and its principal (EXONET_PRINCIPAL). A kill -9 is noticed and everything of
   * the task reclaimed.
   */
  startProcessTask(module: URL | string, principal: string, args: readonly string[] = []): ChildProcess {
    const { session, handle } = this.attach(principal, 'process');
    if (handle.transport !== 'process') throw new Error('unreachable: process transport expected');
    const child = spawnProcess(module, args, {
      env: { ...process.env, EXONET_CHANNEL: handle.name, EXONET_PRINCIPAL: principal, EXONET_DRIVER: this.id },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#tasks.add(child);
    // The name is gone from /dev/shm once both ends mapped it; the driver keeps its mapping.
    child.on('exit', () => {
      this.#tasks.delete(child);
      session.channel.taskExited(`task process ${child.pid} exited`);
      this.core.detach(session.id);
    });
    return child;
  }

  /** Everything `exonet driver status` shows. */
  status(): DriverStatus {
    const c = this.core;
    const link = c.device.link();
    const f = this.follower;
    return {
      id: c.driverId,
      mac: c.mac,
      link: { up: link.up, speed: link.speed },
      suspended: c.suspended(),
      feed: f ? { url: f.currentUrl, lastSeq: f.lastSeq, validUntil: f.validUntil, staleSince: f.staleSince } : null,
      tasks: c.sessions().map((s) => ({
        id: s.id,
        principal: s.principal,
        attachedAt: s.attachedAt,
        grants: c.grants.ofTask(s.id).map((g) => ({
          jti: g.jti,
          dir: g.claims.dir,
          layer: g.claims.layer,
          excl: g.claims.excl,
          exp: g.claims.exp,
          rule: g.claims.rule,
        })),
        counters: { ...s.counters },
      })),
      counters: { ...c.counters },
      device: { ...c.device.counters() },
      refusals: Object.fromEntries(c.grants.refusals),
      removals: Object.fromEntries(c.grants.removals),
      firewall: c.firewall.describe(),
      flows: c.conntrack.size,
    };
  }

  /** Stops tasks, the feed, the loop and the NIC. */
  async close(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    clearInterval(this.#jwksTimer);
    this.follower?.close();
    for (const t of this.#tasks) {
      if ('terminate' in t) await t.terminate();
      else t.kill('SIGKILL');
    }
    await this.#loop;
    this.core.close();
    await this.nic.close();
  }

  #setKeys(doc: unknown): void {
    const ks = createKeySet(doc);
    if (ks.ok) this.#keys = ks.keySet;
  }

  async #refreshKeys(servers: readonly string[]): Promise<void> {
    for (const url of servers) {
      try {
        this.#setKeys(await fetchJson(`${url}/.well-known/jwks.json`));
        return;
      } catch {
        // Next replica.
      }
    }
  }

  /** The driver's loop: poll while there is work; when idle, sleep until an interrupt or a short timeout. */
  async #run(): Promise<void> {
    let idle = 0;
    while (this.#running) {
      let work = 0;
      // A generated or replayed wire offers frames only while the NIC has room (as a paced link would).
      const src = this.#source;
      if (src !== undefined && !src.done) {
        for (let i = 0; i < 64 && this.nic.model.rxReady && src.pump(1) > 0; i++) work++;
      }
      work += this.core.poll();
      if (work > 0) {
        idle = 0;
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      // Tasks ring no bell of ours yet (one bell per channel), so an idle driver looks again within 1-4 ms.
      idle = Math.min(idle + 1, 4);
      await new Promise<void>((r) => {
        const t = setTimeout(done, idle);
        this.#wake = done;
        function done() {
          clearTimeout(t);
          r();
        }
      });
      this.#wake = null;
    }
  }
}

async function fetchJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}
