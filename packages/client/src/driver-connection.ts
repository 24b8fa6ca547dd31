import { type Ed25519KeyPair, generateHolderKey, jwkThumbprint, publicJwk, signChallenge } from '@exonet/grant';
import {
  attachChannel,
  type ChannelHandle,
  CONTROL_PAYLOAD,
  joinChannelGroup,
  type TaskChannel,
  type TaskChannelGroup,
} from '@exonet/ipc';
import {
  ChunkReader,
  ChunkWriter,
  type DriverEvent,
  type HelloResponse,
  type InstallResponse,
  jsonMessage,
  MessageType,
  parseJson,
  type Refusal,
  ResponseStatus,
  type TaskStatus,
  TxStatus,
} from '@exonet/protocol';
import { type MacAddress, parseMac } from '@exonet/wire';
import type { FrameHandler, FrameLink } from './net/frame-link.ts';

/** A request the driver refused or could not read: the driver's code (EXO_ERR_...) and reason. */
export class DriverRefusal extends Error {
  constructor(
    readonly code: string,
    readonly reason: string,
  ) {
    super(`${code}: ${reason}`);
    this.name = 'DriverRefusal';
  }
}

/** Options of {@link DriverConnection.attach}. */
export interface ConnectOptions {
  /** The task's Ed25519 key (grants are bound to it); a fresh one by default. */
  readonly key?: Ed25519KeyPair;
  /** How long a control request may wait for its answer, ms (default 10 s). */
  readonly timeoutMs?: number;
  /** Busy-poll this many times before sleeping when idle (throughput over CPU). Default 0. */
  readonly spin?: number;
  /**
   * When the driver created the channel in a channel group (several tasks in one event loop), serve it from
   * the group's one poller in this thread rather than from a wait loop of its own. Default true; a group with
   * a shared receive queue is always served by its poller (the driver puts this task's frames there).
   */
  readonly group?: boolean;
  /**
   * Busy polling of the group's poller, µs (@exonet/ipc GroupPollerOptions.busyPollMicros): after finding
   * work it keeps looking this long before it sleeps, so that under steady traffic the driver pays no
   * wake-ups. Default 0.
   */
  readonly busyPollMicros?: number;
}

/** Transmit outcomes counted by the connection. */
export interface TxCounters {
  sent: number;
  refused: number;
  /** Refusals by status name (DENIED_TASK, DENIED_FIREWALL, ...). */
  byStatus: Record<string, number>;
}

/** The standard Ethernet MTU (IP packet size without the 14-byte header). */
const ETHERNET_MTU = 1500;

const TX_STATUS_NAME = new Map<number, string>(Object.entries(TxStatus).map(([k, v]) => [v, k]));

/**
 * A task's connection to its driver: the channel's rings, the key proof, grant installation and the frame
 * path. It implements {@link FrameLink}, so a network stack (`createStack`) runs on it directly.
 *
 * Lifecycle: `await DriverConnection.attach(handle)` (HELLO, then PROVE with the task's key), then `install`
 * grants obtained from the permission server, then `send` / `onFrames` / `frames()`. `close()` detaches.
 */
export class DriverConnection implements FrameLink {
  readonly mac: MacAddress;
  readonly mtu: number;
  /** The driver's answer to HELLO. */
  readonly hello: HelloResponse;
  /** The task's key and its RFC 7638 thumbprint (what grants must name in cnf.jkt). */
  readonly key: Ed25519KeyPair;
  readonly jkt: string;
  readonly tx: TxCounters = { sent: 0, refused: 0, byStatus: {} };
  /** Frames dropped because the task had no free frame to put them in. */
  txNoFrame = 0;

  readonly #ch: TaskChannel;
  readonly #reader: ChunkReader;
  readonly #writer: ChunkWriter;
  readonly #pending = new Map<number, { resolve: (body: unknown) => void; reject: (e: Error) => void }>();
  readonly #timeoutMs: number;
  #nextId = 1;
  #handler: FrameHandler | null = null;
  #frameAt: ((bytes: Uint8Array, offset: number, length: number) => void) | null = null;
  /** Frames handed to the driver to send and not yet given back: no completion to look for while 0. */
  #txInFlight = 0;
  readonly #eventHandlers: ((e: DriverEvent) => void)[] = [];
  readonly #txListeners: ((status: number, tag: number) => void)[] = [];
  #running = false;
  #closed = false;
  #loop: Promise<void> | undefined;
  #keepAlive: NodeJS.Timeout | undefined;
  /** Stops the group poller serving this connection (group mode). */
  #leaveGroup: (() => void) | undefined;
  #useGroup = true;
  #busyPollMicros: number | undefined;
  /** The group poller serving this connection (group mode), and a batch of one for shared-queue frames. */
  #group: TaskChannelGroup | undefined;
  readonly #one: Uint8Array[] = [new Uint8Array(0)];
  /** Reused by every receive: the frames of one batch and their pool offsets. */
  readonly #batch: Uint8Array[] = [];
  readonly #offsets: number[] = [];
  /** Per pool frame, the last view handed out (reused while the received length is the same). */
  #views: (Uint8Array | undefined)[] = [];

  private constructor(
    ch: TaskChannel,
    hello: HelloResponse,
    key: Ed25519KeyPair,
    jkt: string,
    timeoutMs: number,
    reader: ChunkReader,
    writer: ChunkWriter,
  ) {
    this.#ch = ch;
    this.hello = hello;
    this.key = key;
    this.jkt = jkt;
    this.#timeoutMs = timeoutMs;
    this.#reader = reader;
    this.#writer = writer;
    const mac = parseMac(hello.mac);
    if (mac === null)
      throw new DriverRefusal('EXO_ERR_CLIENT_PROTOCOL', `the driver sent a bad MAC address: ${hello.mac}`);
    this.mac = mac;
    // The NIC's buffers hold frames larger than Ethernet's, but the link partner (a Linux TAP, a switch, a real
    // NIC) has the standard 1500-byte MTU: bigger IP packets would be dropped there or, worse, reach some
    // hosts and not others. Jumbo frames would need both ends configured for them.
    this.mtu = Math.min(ETHERNET_MTU, hello.maxFrameSize - 14);
  }

  /**
   * Attaches to the channel the driver created for this task and proves the task's key.
   * @throws DriverRefusal when the driver refuses the proof; IpcError when the handle is unusable
   */
  static async attach(handle: ChannelHandle, options: ConnectOptions = {}): Promise<DriverConnection> {
    const ch = attachChannel(handle, { spin: options.spin });
    // A pending Atomics.waitAsync does not keep a thread alive; like an open socket, an attached channel does.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const timeoutMs = options.timeoutMs ?? 10_000;
    const reader = new ChunkReader();
    const writer = new ChunkWriter((slot) => ch.request(slot), CONTROL_PAYLOAD);
    try {
      const hello = (await rawRequest(ch, reader, writer, MessageType.HELLO, 1, {}, timeoutMs)) as HelloResponse;
      const key = options.key ?? generateHolderKey();
      const jwk = publicJwk(key.publicKey);
      const proof = signChallenge(hello.challenge, key);
      await rawRequest(ch, reader, writer, MessageType.PROVE, 2, { jwk, proof }, timeoutMs);
      const conn = new DriverConnection(ch, hello, key, jwkThumbprint(jwk), timeoutMs, reader, writer);
      conn.#keepAlive = keepAlive;
      conn.#nextId = 3;
      conn.#useGroup = options.group ?? true;
      conn.#busyPollMicros = options.busyPollMicros;
      conn.#start();
      return conn;
    } catch (err) {
      clearInterval(keepAlive);
      ch.close();
      throw err;
    }
  }

  /** True until either side closes. */
  get connected(): boolean {
    return !this.#closed && this.#ch.connected;
  }

  /**
   * Installs a grant on the driver.
   * @param replaces jti of a grant this one renews (removed once this one is in: no gap in delivery)
   * @throws DriverRefusal with the driver's reason (bad signature, wrong audience, expired, ...)
   */
  async install(grant: string, replaces?: string): Promise<InstallResponse> {
    return (await this.#request(MessageType.INSTALL, replaces ? { grant, replaces } : { grant })) as InstallResponse;
  }

  /** Removes one of this task's grants. */
  async uninstall(jti: string): Promise<boolean> {
    return ((await this.#request(MessageType.UNINSTALL, { jti })) as { removed: boolean }).removed;
  }

  /** The task's grants and counters as the driver sees them. */
  async status(): Promise<TaskStatus> {
    return (await this.#request(MessageType.STATUS, {})) as TaskStatus;
  }

  /** Called for every driver event (a grant removed by revocation or expiry, fail-closed, ...). */
  onEvent(handler: (event: DriverEvent) => void): () => void {
    this.#eventHandlers.push(handler);
    return () => {
      const i = this.#eventHandlers.indexOf(handler);
      if (i >= 0) this.#eventHandlers.splice(i, 1);
    };
  }

  /** Called with the status (TxStatus) and tag of every frame the driver finished with. */
  onTxStatus(listener: (status: number, tag: number) => void): () => void {
    this.#txListeners.push(listener);
    return () => {
      const i = this.#txListeners.indexOf(listener);
      if (i >= 0) this.#txListeners.splice(i, 1);
    };
  }

  // ------------------------------------------------------------ FrameLink

  /** Queues one frame; false when the task has no free frame (too many in flight) or is closed. */
  send(frame: Uint8Array, tag = 0): boolean {
    if (!this.connected) return false;
    const ok = this.#stage(frame, tag);
    this.#ch.flush();
    return ok;
  }

  /** Queues frames with one publish; returns how many (from the front) were accepted. */
  sendBatch(frames: readonly Uint8Array[]): number {
    if (!this.connected) return 0;
    let n = 0;
    while (n < frames.length && this.#stage(frames[n], 0)) n++;
    this.#ch.flush();
    return n;
  }

  onFrames(handler: FrameHandler): () => void {
    this.#handler = handler;
    return () => {
      if (this.#handler === handler) this.#handler = null;
    };
  }

  /**
   * The allocation-free receive: `handler` is called once per received frame with the task's packet memory,
   * the frame's byte offset in it and its length, and must read the frame before it returns (the frame goes
   * back to the driver right after). While set, it takes the place of the {@link onFrames} handler. Returns a
   * function that unregisters it.
   */
  onFrameAt(handler: (bytes: Uint8Array, offset: number, length: number) => void): () => void {
    this.#frameAt = handler;
    return () => {
      if (this.#frameAt === handler) this.#frameAt = null;
    };
  }

  /** Received frames as an async iterator (copies; for tasks that read raw frames). */
  async *frames(limit = 4096): AsyncGenerator<Uint8Array, void, undefined> {
    const queue: Uint8Array[] = [];
    let wake: (() => void) | null = null;
    const off = this.onFrames((frames) => {
      for (const f of frames) {
        if (queue.length >= limit) queue.shift();
        queue.push(f.slice());
      }
      wake?.();
    });
    const offEvent = this.onEvent((e) => {
      if (e.event === 'disconnect') wake?.();
    });
    try {
      while (this.connected || queue.length > 0) {
        while (queue.length > 0) yield queue.shift()!;
        if (!this.connected) break;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 200).unref();
        });
        wake = null;
      }
    } finally {
      off();
      offEvent();
    }
  }

  /** Detaches from the driver (it drops every grant, flow and buffer of this task). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#pending.values())
      p.reject(new DriverRefusal('EXO_ERR_CLIENT_CLOSED', 'the connection closed'));
    this.#pending.clear();
    this.#leaveGroup?.();
    this.#ch.close();
    await this.#loop;
    clearInterval(this.#keepAlive);
  }

  // ------------------------------------------------------------ internals

  #stage(frame: Uint8Array, tag: number): boolean {
    this.#reclaim();
    if (frame.length === 0 || frame.length > this.#ch.pool.frameSize) return false;
    const offset = this.#ch.alloc();
    if (offset < 0) {
      this.txNoFrame++;
      return false;
    }
    this.#ch.pool.bytes.set(frame, offset);
    if (!this.#ch.send(offset, frame.length, tag)) {
      this.#ch.free(offset);
      return false;
    }
    this.#txInFlight++;
    return true;
  }

  /** Takes back frames the driver finished transmitting. */
  #reclaim(): number {
    if (this.#txInFlight === 0) return 0;
    let n = 0;
    for (let off = this.#ch.nextCompletion(); off >= 0; off = this.#ch.nextCompletion()) {
      n++;
      const status = this.#ch.status;
      if (status === TxStatus.SENT) this.tx.sent++;
      else {
        this.tx.refused++;
        const name = TX_STATUS_NAME.get(status) ?? String(status);
        this.tx.byStatus[name] = (this.tx.byStatus[name] ?? 0) + 1;
      }
      for (const l of this.#txListeners) l(status, this.#ch.tag);
      this.#ch.free(off);
    }
    this.#txInFlight -= n;
    return n;
  }

  #receive(): number {
    const ch = this.#ch;
    const frameAt = this.#frameAt;
    if (frameAt !== null) {
      const bytes = ch.pool.bytes;
      let n = 0;
      try {
        for (let off = ch.nextRx(); off >= 0; off = ch.nextRx()) {
          n++;
          try {
            frameAt(bytes, off, Math.min(ch.rxLength, ch.pool.frameSize));
          } finally {
            // Straight back to the driver for the next packets.
            ch.postRx(off);
          }
        }
      } finally {
        if (n > 0) ch.flush();
      }
      return n;
    }
    // Nothing is allocated per frame: the batch arrays are reused, and so is each frame's view while the
    // lengths received in it stay the same (the handler must not keep them: FrameLink says so).
    const batch = this.#batch;
    const offsets = this.#offsets;
    const views = this.#views;
    const pool = ch.pool;
    for (let off = ch.nextRx(); off >= 0; off = ch.nextRx()) {
      const index = pool.indexOf(off);
      if (index < 0) continue; // the driver is trusted, but a bad offset must not throw in the loop
      const length = ch.rxLength;
      let view = views[index];
      if (view === undefined || view.length !== length) {
        view = pool.frame(off).subarray(0, Math.min(length, pool.frameSize));
        views[index] = view;
      }
      offsets.push(off);
      batch.push(view);
    }
    const n = batch.length;
    if (n > 0) {
      try {
        this.#handler?.(batch);
      } finally {
        // The frames go straight back to the driver for the next packets.
        for (let i = 0; i < n; i++) ch.postRx(offsets[i]);
        ch.flush();
        batch.length = 0;
        offsets.length = 0;
      }
    }
    return n;
  }

  #control(): number {
    let n = 0;
    this.#writer.pump();
    for (let slot = this.#ch.readResponse(); slot !== undefined; slot = this.#ch.readResponse()) {
      const m = this.#reader.push(slot);
      if (m === undefined || typeof m === 'string') continue;
      n++;
      const body = parseJson(m.payload);
      if (m.type === MessageType.EVENT && m.id === 0) {
        for (const h of this.#eventHandlers) h(body as DriverEvent);
        continue;
      }
      const p = this.#pending.get(m.id);
      if (p === undefined) continue;
      this.#pending.delete(m.id);
      if (m.status === ResponseStatus.OK) p.resolve(body);
      else {
        const r = (body ?? {}) as Partial<Refusal>;
        p.reject(new DriverRefusal(String(r.code ?? 'EXO_ERR_CLIENT_PROTOCOL'), String(r.reason ?? 'refused')));
      }
    }
    return n;
  }

  #request(type: number, body: unknown): Promise<unknown> {
    if (!this.connected) return Promise.reject(new DriverRefusal('EXO_ERR_CLIENT_CLOSED', 'the connection closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new DriverRefusal('EXO_ERR_CLIENT_TIMEOUT', `no answer from the driver within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      timer.unref();
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#writer.write(jsonMessage(type, id, 0, body));
    });
  }

  /** The driver closed the channel (or disconnected this task): tell everyone waiting. */
  #driverClosed(): void {
    this.#leaveGroup?.();
    for (const h of this.#eventHandlers) h({ event: 'disconnect', reason: 'the driver closed the channel' });
    for (const p of this.#pending.values())
      p.reject(new DriverRefusal('EXO_ERR_CLIENT_CLOSED', 'the driver closed the channel'));
    this.#pending.clear();
    clearInterval(this.#keepAlive);
  }

  /** A frame the group's shared receive queue held for this task (read in place, as from its own ring). */
  readonly #sharedFrame = (bytes: Uint8Array, offset: number, length: number): void => {
    if (this.#closed) return;
    const frameAt = this.#frameAt;
    if (frameAt !== null) {
      frameAt(bytes, offset, length);
      return;
    }
    const handler = this.#handler;
    if (handler === null) return;
    const one = this.#one;
    one[0] = this.#group!.sharedView(bytes, offset, length);
    handler(one);
  };

  /** One turn of the group's poller for this connection: everything the driver left, in one go. */
  readonly #service = (): void => {
    if (this.#closed) return;
    this.#control();
    this.#receive();
    this.#reclaim();
    if (!this.#ch.connected) this.#driverClosed();
  };

  #start(): void {
    if (this.#running) return;
    this.#running = true;
    const member = this.#ch.group;
    // A group with a shared receive queue is served by its poller whatever the options say: that is where
    // the driver puts this task's frames.
    if (member !== undefined && (this.#useGroup || member.group.sharedRx !== undefined)) {
      // The driver marks this channel in its group's bitmap whenever it leaves something: the thread's one
      // poller calls #service then, so a thousand connections cost one wait, not a thousand.
      const group = joinChannelGroup(member.group);
      this.#group = group;
      const leave = group.add(member.member, this.#service, { busyPollMicros: this.#busyPollMicros });
      if (group.sharesRx) {
        let stop: () => void;
        try {
          stop = group.receiveShared(member, this.#sharedFrame);
        } catch (err) {
          leave();
          throw err;
        }
        this.#leaveGroup = () => {
          stop();
          leave();
        };
      } else this.#leaveGroup = leave;
      this.#running = false;
      return;
    }
    this.#loop = (async () => {
      while (!this.#closed) {
        const work = this.#control() + this.#receive() + this.#reclaim();
        if (!this.#ch.connected) {
          this.#driverClosed();
          break;
        }
        if (work === 0) await this.#ch.work(50);
        else await new Promise<void>((r) => setImmediate(r));
      }
      this.#running = false;
    })();
  }
}

/** One request before the connection's loop runs (the attach handshake). */
async function rawRequest(
  ch: TaskChannel,
  reader: ChunkReader,
  writer: ChunkWriter,
  type: number,
  id: number,
  body: unknown,
  timeoutMs: number,
): Promise<unknown> {
  writer.write(jsonMessage(type, id, 0, body));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    writer.pump();
    for (let slot = ch.readResponse(); slot !== undefined; slot = ch.readResponse()) {
      const m = reader.push(slot);
      if (m === undefined || typeof m === 'string' || m.id !== id) continue;
      const parsed = parseJson(m.payload);
      if (m.status === ResponseStatus.OK) return parsed;
      const r = (parsed ?? {}) as Partial<Refusal>;
      throw new DriverRefusal(String(r.code ?? 'EXO_ERR_CLIENT_PROTOCOL'), String(r.reason ?? 'refused'));
    }
    if (!ch.connected) throw new DriverRefusal('EXO_ERR_CLIENT_CLOSED', 'the driver closed the channel');
    await ch.work(Math.max(1, Math.min(50, deadline - Date.now())));
  }
  throw new DriverRefusal('EXO_ERR_CLIENT_TIMEOUT', `no answer from the driver within ${timeoutMs} ms`);
}
