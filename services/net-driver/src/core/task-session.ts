import { createChallenge, jwkThumbprint, verifyHolderProof } from '@exonet/grant';
import { CONTROL_PAYLOAD, type DriverChannel, type DriverChannelGroup } from '@exonet/ipc';
import {
  ChunkReader,
  ChunkWriter,
  type DriverEvent,
  type HelloResponse,
  type InstallResponse,
  jsonMessage,
  type Message,
  MessageType,
  parseJson,
  ResponseStatus,
  type TaskStatus,
} from '@exonet/protocol';
import type { GrantTable, TaskIdentity } from './grant-table.ts';

/** Per-task counters (monotonic). */
export interface TaskCounters {
  rxDelivered: number;
  /** Frames that matched but found no empty frame in the task's queue (the task reads too slowly). */
  rxQueueFull: number;
  txSent: number;
  txDeniedTask: number;
  txDeniedUser: number;
  txDeniedFirewall: number;
  txDeniedConntrack: number;
  txSuspended: number;
  txNoBuffer: number;
  controlRequests: number;
  controlErrors: number;
  installsRefused: number;
}

/**
 * Response slots a session queues beyond its task's response ring before it stops reading the task's
 * requests: a task that sends and never reads its answers fills its own request ring instead of the
 * driver's memory. A response is at most 64 KiB (a few hundred slots); 512 leaves room for one whole.
 */
export const MAX_RESPONSE_BACKLOG = 512;

/** What a session needs from its driver to answer control requests. */
export interface SessionHost {
  readonly driverId: string;
  readonly mac: string;
  readonly maxFrameSize: number;
  readonly grants: GrantTable;
  suspended(): boolean;
  /** Brings the session's counters up to date (the packet path may count some of them elsewhere). */
  syncCounters(session: TaskSession): void;
}

/**
 * One attached task: its identity (from the attach itself), the key it proved, its channel and the control
 * conversation over the channel's control rings (chunked JSON messages of @exonet/protocol).
 */
export class TaskSession implements TaskIdentity {
  jkt: string | null = null;
  readonly counters: TaskCounters = {
    rxDelivered: 0,
    rxQueueFull: 0,
    txSent: 0,
    txDeniedTask: 0,
    txDeniedUser: 0,
    txDeniedFirewall: 0,
    txDeniedConntrack: 0,
    txSuspended: 0,
    txNoBuffer: 0,
    controlRequests: 0,
    controlErrors: 0,
    installsRefused: 0,
  };
  /** The channel group the task's channel is a member of, if any. */
  group: DriverChannelGroup | undefined;
  #challenge = createChallenge();
  readonly #reader = new ChunkReader();
  readonly #writer: ChunkWriter;

  constructor(
    readonly id: number,
    readonly principal: string,
    readonly channel: DriverChannel,
    readonly attachedAt: number,
  ) {
    this.#writer = new ChunkWriter((slot) => channel.respond(slot), CONTROL_PAYLOAD);
  }

  /** Sends an unsolicited event (id 0) to the task. */
  event(event: DriverEvent): void {
    this.#writer.write(jsonMessage(MessageType.EVENT, 0, ResponseStatus.OK, event));
  }

  /** Response slots waiting for room in the task's response ring. */
  get responseBacklog(): number {
    return this.#writer.pending;
  }

  /**
   * Reads and answers the pending control requests, while the answers waiting for the task to read them
   * stay under {@link MAX_RESPONSE_BACKLOG}. @returns how many messages were handled
   */
  serviceControl(host: SessionHost): number {
    this.#writer.pump();
    let handled = 0;
    while (this.#writer.pending < MAX_RESPONSE_BACKLOG) {
      const slot = this.channel.readRequest();
      if (slot === undefined) break;
      const m = this.#reader.push(slot);
      if (m === undefined) continue;
      handled++;
      this.counters.controlRequests++;
      if (typeof m === 'string') {
        this.counters.controlErrors++;
        this.#reply(slot.type & 0xffff, slot.id, ResponseStatus.BAD_REQUEST, {
          code: 'EXO_ERR_CORE_BAD_CONTROL',
          reason: m === 'too-large' ? 'control message too large' : 'chunks of two messages interleaved',
        });
        continue;
      }
      this.#handle(m, host);
    }
    return handled;
  }

  #handle(m: Message, host: SessionHost): undefined {
    const body = parseJson(m.payload) as Record<string, unknown> | undefined;
    const bad = (reason: string): undefined => {
      this.counters.controlErrors++;
      return this.#reply(m.type, m.id, ResponseStatus.BAD_REQUEST, { code: 'EXO_ERR_CORE_BAD_REQUEST', reason });
    };
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      return bad('the payload is not a JSON object');
    }
    switch (m.type) {
      case MessageType.HELLO: {
        const hello: HelloResponse = {
          driver: host.driverId,
          principal: this.principal,
          challenge: this.#challenge,
          mac: host.mac,
          maxFrameSize: host.maxFrameSize,
        };
        return this.#reply(m.type, m.id, ResponseStatus.OK, hello);
      }
      case MessageType.PROVE: {
        if (typeof body.proof !== 'string') return bad('proof: expected a base64url string');
        let jkt: string;
        try {
          jkt = jwkThumbprint(body.jwk as never);
        } catch {
          return bad('jwk: expected an Ed25519 public JWK');
        }
        const verdict = verifyHolderProof(this.#challenge, body.proof, jkt, body.jwk);
        // A fresh challenge either way: a proof answers exactly one challenge.
        this.#challenge = createChallenge();
        if (!verdict.ok) {
          this.counters.controlErrors++;
          return this.#reply(m.type, m.id, ResponseStatus.REFUSED, { code: verdict.code, reason: verdict.reason });
        }
        this.jkt = jkt;
        return this.#reply(m.type, m.id, ResponseStatus.OK, { jkt, challenge: this.#challenge });
      }
      case MessageType.INSTALL: {
        if (typeof body.grant !== 'string') return bad('grant: expected a compact JWS string');
        if (body.replaces !== undefined && typeof body.replaces !== 'string') return bad('replaces: expected a jti');
        const r = host.grants.install(this, body.grant, body.replaces as string | undefined);
        if (!r.ok) {
          this.counters.installsRefused++;
          return this.#reply(m.type, m.id, ResponseStatus.REFUSED, { code: r.code, reason: r.reason });
        }
        const c = r.grant.claims;
        const ok: InstallResponse = { jti: c.jti, dir: c.dir, layer: c.layer, exp: c.exp };
        return this.#reply(m.type, m.id, ResponseStatus.OK, ok);
      }
      case MessageType.UNINSTALL: {
        if (typeof body.jti !== 'string') return bad('jti: expected a string');
        return this.#reply(m.type, m.id, ResponseStatus.OK, { removed: host.grants.uninstall(this.id, body.jti) });
      }
      case MessageType.STATUS:
        return this.#reply(m.type, m.id, ResponseStatus.OK, this.status(host));
      default:
        return bad(`unknown message type ${m.type}`);
    }
  }

  /** The task's grants and counters. */
  status(host: SessionHost): TaskStatus {
    host.syncCounters(this);
    return {
      grants: host.grants.ofTask(this.id).map((g) => ({
        jti: g.jti,
        dir: g.claims.dir,
        layer: g.claims.layer,
        exp: g.claims.exp,
        excl: g.claims.excl,
      })),
      counters: { ...this.counters },
      suspended: host.suspended(),
    };
  }

  /** Queues an answer; returns undefined so handlers can `return this.#reply(...)`. */
  #reply(type: number, id: number, status: number, body: unknown): undefined {
    this.#writer.write(jsonMessage(type, id, status, body));
    return undefined;
  }
}
