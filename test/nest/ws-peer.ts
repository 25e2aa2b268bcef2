/**
 * A test peer for the Nest e2e tests: the `ws` package's client (a third-party implementation, so the adapter is
 * tested against someone else's reading of RFC 6455), with a queue of received messages and bounded waits.
 */
import { once } from 'node:events';
import WsClient, { type ClientOptions } from 'ws';
import { WAIT_MS, withTimeout } from '../support/net.js';

export { WAIT_MS };


/** A connected client with its messages queued. */
export interface Peer {
  readonly ws: WsClient;
  /** The next message, parsed as JSON. */
  next(): Promise<unknown>;
  /** The next message, raw. */
  nextRaw(): Promise<{ data: Buffer; isBinary: boolean }>;
  /** Sends a value as JSON text. */
  send(value: unknown): void;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  /** Messages received and not yet taken. */
  pending(): number;
}

const open = new Set<WsClient>();

/** Connects to `url` (offering `protocols`) and queues what arrives. Rejects with the HTTP status when the handshake is refused. */
export async function connectPeer(url: string, options: ClientOptions = {}, protocols: readonly string[] = []): Promise<Peer> {
  const ws = protocols.length === 0 ? new WsClient(url, options) : new WsClient(url, [...protocols], options);
  open.add(ws);
  const queue: Array<{ data: Buffer; isBinary: boolean }> = [];
  const waiters: Array<(message: { data: Buffer; isBinary: boolean }) => void> = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const message = { data, isBinary };
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter(message);
    else queue.push(message);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once('close', (code: number, reason: Buffer) => {
      open.delete(ws);
      resolve({ code, reason: reason.toString() });
    });
  });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => {
          ws.terminate();
          reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body }));
        });
      });
      ws.once('error', reject);
    }),
    WAIT_MS,
    `connection to ${url}`,
  );
  const nextRaw = (): Promise<{ data: Buffer; isBinary: boolean }> => {
    const queued = queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return withTimeout(new Promise((resolve) => waiters.push(resolve)), WAIT_MS, 'a message');
  };
  return {
    ws,
    nextRaw,
    next: async () => JSON.parse((await nextRaw()).data.toString()) as unknown,
    send: (value) => ws.send(JSON.stringify(value)),
    closed: withTimeout(closed, WAIT_MS * 4, 'the close'),
    pending: () => queue.length,
  };
}

/** The refusal of a handshake: its status and body. */
export async function refusal(url: string, options: ClientOptions = {}): Promise<{ status: number; body: string }> {
  try {
    await connectPeer(url, options);
  } catch (error) {
    const { status, body } = error as { status?: number; body?: string };
    if (status !== undefined) return { status, body: body ?? '' };
    throw error;
  }
  throw new Error(`${url} accepted the connection`);
}

/** Terminates every peer still open (call in afterEach). */
export async function closePeers(): Promise<void> {
  const closing = [...open].map((ws) => {
    if (ws.readyState === WsClient.CLOSED) return Promise.resolve();
    const done = once(ws, 'close');
    ws.terminate();
    return done;
  });
  await Promise.all(closing);
  open.clear();
}
