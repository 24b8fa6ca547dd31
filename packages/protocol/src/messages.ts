/**
 * The messages of the task-driver protocol. Every control message travels on a channel's control rings
 * (requests task -> driver, responses and events driver -> task) as `{ type, id, status, payload }`, with a
 * JSON payload split into chunks by `chunking.ts`. The data path (frames) never uses these.
 */

/** Message types. A response carries its request's type and id. */
export const MessageType = {
  /** task -> driver: `{}`. Response: {@link HelloResponse} (includes the challenge the task must sign). */
  HELLO: 1,
  /** task -> driver: {@link ProveRequest}. Response: `{ jkt }` or a refusal. */
  PROVE: 2,
  /** task -> driver: {@link InstallRequest}. Response: {@link InstallResponse} or a refusal. */
  INSTALL: 3,
  /** task -> driver: `{ jti }`. Response: `{ removed: boolean }`. */
  UNINSTALL: 4,
  /** task -> driver: `{}`. Response: {@link TaskStatus}. */
  STATUS: 5,
  /** driver -> task, id 0, unsolicited: {@link DriverEvent}. */
  EVENT: 6,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** The `status` of a response. */
export const ResponseStatus = {
  OK: 0,
  /** The request was understood and refused: payload {@link Refusal}. */
  REFUSED: 1,
  /** The request was malformed: payload {@link Refusal}. */
  BAD_REQUEST: 2,
} as const;
export type ResponseStatus = (typeof ResponseStatus)[keyof typeof ResponseStatus];

/**
 * The status a transmitted frame comes back with (the descriptor's status on tx.free): sent, or refused and
 * by which layer. Values 0-3 are @exonet/ipc's DescriptorStatus (OK, DENIED, INVALID, TRUNCATED).
 */
export const TxStatus = {
  SENT: 0,
  /** Refused, layer unknown (kept for @exonet/ipc's generic DENIED). */
  DENIED: 1,
  /** The descriptor was invalid. */
  INVALID: 2,
  /** No TX grant of the task accepts the frame. */
  DENIED_TASK: 16,
  /** The user layer (grants of the task's principal at layer `user`) refuses the frame. */
  DENIED_USER: 17,
  /** The system firewall refuses the frame. */
  DENIED_FIREWALL: 18,
  /** The connection state refuses it (a flow of another task, a full flow table, a malformed header). */
  DENIED_CONNTRACK: 19,
  /** The driver fails closed (revocation feed stale): no task frame leaves. */
  SUSPENDED: 20,
  /** The NIC had no TX buffer, or the link is down: dropped, not refused. */
  NO_BUFFER: 21,
} as const;
export type TxStatus = (typeof TxStatus)[keyof typeof TxStatus];

/** A refusal: a stable code (EXO_ERR_...) and a reason for humans. */
export interface Refusal {
  readonly code: string;
  readonly reason: string;
}

export interface HelloResponse {
  readonly driver: string;
  /** The principal the driver knows the task as (from the attach itself). */
  readonly principal: string;
  /** Fresh challenge the task signs with its key (PROVE). */
  readonly challenge: string;
  /** The NIC's MAC address, "aa:bb:cc:dd:ee:ff". */
  readonly mac: string;
  /** Largest frame, bytes (no FCS). */
  readonly maxFrameSize: number;
}

export interface ProveRequest {
  /** The task's public key (Ed25519 JWK: kty OKP, crv Ed25519, x). */
  readonly jwk: unknown;
  /** base64url signature over the challenge (@exonet/grant signChallenge). */
  readonly proof: string;
}

export interface InstallRequest {
  /** The grant (compact JWS) as the permission server issued it. */
  readonly grant: string;
  /** jti of a grant of this task that this one renews: removed once this one is in (no gap). */
  readonly replaces?: string;
}

export interface InstallResponse {
  readonly jti: string;
  readonly dir: 'rx' | 'tx';
  readonly layer: 'task' | 'user' | 'system';
  readonly exp: number;
}

/** Counters of one task as its driver sees them. */
export interface TaskStatus {
  readonly grants: readonly { jti: string; dir: string; layer: string; exp: number; excl: boolean }[];
  readonly counters: Readonly<Record<string, number>>;
  readonly suspended: boolean;
}

export type DriverEvent =
  | { readonly event: 'grant-removed'; readonly jti: string; readonly cause: string }
  | { readonly event: 'suspended'; readonly reason: string }
  | { readonly event: 'resumed' }
  | { readonly event: 'disconnect'; readonly reason: string };
