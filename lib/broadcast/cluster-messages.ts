/**
 * The control messages instances exchange over the bus to act as one server: heartbeats, cluster-wide operations
 * and their replies, server-side events, and presence. Each is JSON text in a bus envelope (room `null`) on the
 * server's control channel `<channel>#cluster` (every instance), or, for a reply, on the asking instance's own
 * channel `<channel>#cluster:<instance>`. `parseClusterMessage()` checks what arrives, since anything may be
 * published on a shared Redis: a malformed message is dropped with a reason, never thrown.
 */

/** The version of the format; a message of another version is dropped (instances of another release). */
export const CLUSTER_FORMAT = 1;

/** Which clients an operation is for: a room's members (`null`: every client), without some client ids. */
export interface ClusterTargetSpec {
  readonly room: string | null;
  readonly except: readonly string[];
}

/** The cluster-wide operations on clients. */
export type ClusterOperation = 'fetchClients' | 'count' | 'join' | 'leave' | 'disconnect';

const OPERATIONS: ReadonlySet<string> = new Set<ClusterOperation>(['fetchClients', 'count', 'join', 'leave', 'disconnect']);

/** A presence entry as a snapshot carries it: room, client id, data. */
export type PresenceTuple = readonly [room: string, id: string, data: unknown];

export type ClusterMessage =
  /** "I am alive", every `clusterHeartbeatMs`; `seq` is the sender's presence sequence number. `hello`: just started, answer. */
  | { readonly v: 1; readonly t: 'hb'; readonly from: string; readonly seq: number; readonly hello?: boolean }
  /** The sender is closing: forget it and its presence entries now. */
  | { readonly v: 1; readonly t: 'bye'; readonly from: string }
  /** A cluster-wide operation on the target's clients; answered with `res` on the sender's reply channel. */
  | {
      readonly v: 1;
      readonly t: 'op';
      readonly from: string;
      readonly rid: number;
      readonly op: ClusterOperation;
      readonly target: ClusterTargetSpec;
      readonly room?: string;
      readonly code?: number;
      readonly reason?: string;
    }
  /** A server-side event; `rid` is `null` when no reply is wanted (`serverSideEmit`). */
  | { readonly v: 1; readonly t: 'ev'; readonly from: string; readonly rid: number | null; readonly event: string; readonly data: unknown }
  /** The reply to an `op` or `ev`. */
  | { readonly v: 1; readonly t: 'res'; readonly from: string; readonly rid: number; readonly result?: unknown; readonly error?: string }
  /** Presence: the sender's client `id` is in `room` (or its data changed), as of the sender's `seq`. */
  | { readonly v: 1; readonly t: 'pj'; readonly from: string; readonly seq: number; readonly room: string; readonly id: string; readonly data: unknown }
  /** Presence: the sender's client `id` left `room`. */
  | { readonly v: 1; readonly t: 'pl'; readonly from: string; readonly seq: number; readonly room: string; readonly id: string }
  /** Presence: `to`, please publish your whole presence (the sender missed some of it). */
  | { readonly v: 1; readonly t: 'psync'; readonly from: string; readonly to: string }
  /** Presence: every entry of the sender, as of `seq`. */
  | { readonly v: 1; readonly t: 'psnap'; readonly from: string; readonly seq: number; readonly entries: readonly PresenceTuple[] };

/** A message without its `v` and `from`, which the sender adds. */
export type ClusterMessageBody = ClusterMessage extends infer M ? (M extends ClusterMessage ? Omit<M, 'v' | 'from'> : never) : never;

const INSTANCE = /^[0-9a-f]{32}$/;

const isString = (value: unknown): value is string => typeof value === 'string';
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

function checkTarget(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'no target';
  const { room, except } = value as { room?: unknown; except?: unknown };
  if (room !== null && !isString(room)) return 'target room is neither a string nor null';
  if (!Array.isArray(except) || !except.every(isString)) return 'target except is not a list of client ids';
  return null;
}

/** Why `message` is not a valid message of its type, or `null` when it is. */
function problem(message: Record<string, unknown>): string | null {
  switch (message.t) {
    case 'hb':
      return isCount(message.seq) ? null : 'heartbeat without a sequence number';
    case 'bye':
      return null;
    case 'op':
      if (!isCount(message.rid)) return 'operation without a request id';
      if (!isString(message.op) || !OPERATIONS.has(message.op)) return `unknown operation ${String(message.op)}`;
      if ((message.op === 'join' || message.op === 'leave') && !isString(message.room)) return `${message.op} without a room`;
      return checkTarget(message.target);
    case 'ev':
      if (message.rid !== null && !isCount(message.rid)) return 'event with an invalid request id';
      return isString(message.event) ? null : 'event without a name';
    case 'res':
      return isCount(message.rid) ? null : 'reply without a request id';
    case 'pj':
    case 'pl':
      if (!isCount(message.seq)) return 'presence change without a sequence number';
      return isString(message.room) && isString(message.id) ? null : 'presence change without a room or id';
    case 'psync':
      return isString(message.to) ? null : 'presence request without an instance';
    case 'psnap':
      if (!isCount(message.seq)) return 'presence snapshot without a sequence number';
      if (!Array.isArray(message.entries)) return 'presence snapshot without entries';
      return message.entries.every((e: unknown) => Array.isArray(e) && e.length === 3 && isString(e[0]) && isString(e[1]))
        ? null
        : 'presence snapshot with a malformed entry';
    default:
      return `unknown message type ${String(message.t)}`;
  }
}

/** Parses and checks one control message; never throws. */
export function parseClusterMessage(data: string | Buffer): { readonly message: ClusterMessage } | { readonly malformed: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    return { malformed: 'not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { malformed: 'not a JSON object' };
  const message = parsed as Record<string, unknown>;
  if (message.v !== CLUSTER_FORMAT) return { malformed: `format ${String(message.v)}, not ${CLUSTER_FORMAT}` };
  if (!isString(message.from) || !INSTANCE.test(message.from)) return { malformed: 'no sender instance id' };
  const error = problem(message);
  return error === null ? { message: message as unknown as ClusterMessage } : { malformed: error };
}
