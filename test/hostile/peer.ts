/**
 * What the hostile tests share: a raw client that writes exact bytes (from any loopback address), the handshake
 * request and client frames built independently of lib/, and a well-behaved client whose numbered messages must
 * all come back, once and in order, whatever the attackers next to it do.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import WsLibrary from 'ws';
import { WAIT_MS, withTimeout } from '../support/net.js';

export { WAIT_MS };


/** The RFC 6455 §1.3 sample key (the server's answer is `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`). */
export const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A valid upgrade request; `extra` lines are added as given (`'Sec-WebSocket-Extensions: permessage-deflate'`). */
export function upgradeRequest(path = '/', extra: readonly string[] = []): Buffer {
  return Buffer.from(
    [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${SAMPLE_KEY}`,
      'Sec-WebSocket-Version: 13', ...extra, '', ''].join('\r\n'),
    'latin1',
  );
}

/** Options of `clientFrame`. */
export interface FrameOptions {
  fin?: boolean;
  rsv1?: boolean;
  /** The length to declare instead of the payload's (the payload is sent as given). */
  declaredLength?: number | bigint;
  /** Send unmasked (a protocol error from a client). */
  unmasked?: boolean;
}

/** One client frame (masked with a random key), built without lib/protocol. */
export function clientFrame(opcode: number, payload: Buffer, options: FrameOptions = {}): Buffer {
  const length = BigInt(options.declaredLength ?? payload.length);
  const first = ((options.fin ?? true) ? 0x80 : 0) | (options.rsv1 === true ? 0x40 : 0) | opcode;
  const mask = options.unmasked === true ? 0 : 0x80;
  let head: Buffer;
  if (length <= 125n) head = Buffer.from([first, mask | Number(length)]);
  else if (length <= 0xffffn) {
    head = Buffer.from([first, mask | 126, 0, 0]);
    head.writeUInt16BE(Number(length), 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = mask | 127;
    head.writeBigUInt64BE(length, 2);
  }
  if (options.unmasked === true) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([head, key, body]);
}

/** The close code in a server's unmasked close frame found in `bytes` after the HTTP head, or undefined. */
export function closeCodeIn(bytes: Buffer): number | undefined {
  const start = bytes.indexOf('\r\n\r\n');
  let at = start === -1 ? 0 : start + 4;
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at]! & 0x0f;
    let length = bytes[at + 1]! & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      if (offset + 2 > bytes.length) return undefined;
      length = bytes.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      if (offset + 8 > bytes.length) return undefined;
      length = Number(bytes.readBigUInt64BE(offset));
      offset += 8;
    }
    if (opcode === 0x8) return length >= 2 && offset + 2 <= bytes.length ? bytes.readUInt16BE(offset) : 1005;
    at = offset + length;
  }
  return undefined;
}

/** A raw TCP (or TLS) socket that keeps what it receives. */
export class RawPeer {
  readonly socket: net.Socket;
  readonly #chunks: Buffer[] = [];
  #closed = false;
  readonly #waiters = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#notify();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#notify();
    });
    socket.on('error', () => undefined);
  }

  /** Connects from `localAddress` (any 127.x.y.z works on Linux) to 127.0.0.1:`port`. */
  static async connect(port: number, options: { localAddress?: string; tls?: tls.ConnectionOptions; host?: string } = {}): Promise<RawPeer> {
    const host = options.host ?? '127.0.0.1';
    const socket = options.tls
      ? tls.connect({ port, host, ...options.tls })
      : net.connect({ port, host, ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }) });
    const peer = new RawPeer(socket);
    ALL.add(peer);
    await withTimeout(once(socket, options.tls ? 'secureConnect' : 'connect'), WAIT_MS, `connection to port ${port}`);
    return peer;
  }

  get closed(): boolean {
    return this.#closed;
  }

  received(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  /** Writes and waits for the kernel to take the bytes (rejects if the socket is gone). */
  write(data: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, (error) => (error ? reject(error) : resolve())),
    );
  }

  /** Waits until `predicate(received)` holds, or the socket closes (then resolves too), or `ms` passes. */
  async until(predicate: (bytes: Buffer) => boolean, ms = WAIT_MS, what = 'the expected bytes'): Promise<Buffer> {
    let check: () => void = () => undefined;
    const done = new Promise<Buffer>((resolve) => {
      check = () => {
        const bytes = this.received();
        if (predicate(bytes) || this.#closed) {
          this.#waiters.delete(check);
          resolve(bytes);
        }
      };
      this.#waiters.add(check);
      check();
    });
    return withTimeout(done, ms, what).finally(() => this.#waiters.delete(check));
  }

  /** Waits for the HTTP head of the answer. */
  head(ms = WAIT_MS): Promise<string> {
    return this.until((b) => b.includes('\r\n\r\n'), ms, 'an HTTP head').then((b) => {
      const end = b.indexOf('\r\n\r\n');
      return b.subarray(0, end === -1 ? b.length : end).toString('latin1');
    });
  }

  /** Waits for the server to close the connection. */
  closedByServer(ms = WAIT_MS): Promise<Buffer> {
    return this.until(() => false, ms, 'the server closing the connection');
  }

  /** Sends a TCP RST (SO_LINGER 0) instead of a FIN. */
  reset(): void {
    this.socket.resetAndDestroy();
  }

  destroy(): void {
    ALL.delete(this);
    this.socket.destroy();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

const ALL = new Set<RawPeer>();

/** Destroys every raw peer still open (call in `afterEach`). */
export function destroyPeers(): void {
  for (const peer of [...ALL]) peer.destroy();
}

/**
 * A well-behaved client (the `ws` library, a real independent implementation): sends numbered messages to an echo
 * server and checks that every one comes back once, in order.
 */
export class GoodClient {
  readonly ws: WsLibrary;
  readonly #received: string[] = [];
  #sent = 0;
  #waiter: (() => void) | undefined;

  private constructor(ws: WsLibrary) {
    this.ws = ws;
    ws.on('message', (data: Buffer) => {
      this.#received.push(data.toString());
      this.#waiter?.();
    });
  }

  static async open(url: string, options: WsLibrary.ClientOptions = {}): Promise<GoodClient> {
    const ws = new WsLibrary(url, options);
    ws.on('error', () => undefined);
    GOOD.add(ws);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('close', (code) => reject(new Error(`well-behaved client closed with ${code} before opening`)));
      }),
      WAIT_MS,
      `well-behaved client open on ${url}`,
    );
    return new GoodClient(ws);
  }

  /** Sends `count` numbered messages and waits until all of them have come back. */
  async exchange(count: number, ms = WAIT_MS): Promise<void> {
    const first = this.#sent;
    for (let i = 0; i < count; i++) this.ws.send(`m${first + i}`);
    this.#sent += count;
    await withTimeout(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (this.#received.length >= this.#sent) {
            this.#waiter = undefined;
            resolve();
          }
        };
        this.#waiter = check;
        check();
      }),
      ms,
      `${count} echoes (got ${this.#received.length - first})`,
    );
  }

  /** Every message sent came back exactly once, in order. */
  get intact(): boolean {
    return this.#received.length === this.#sent && this.#received.every((m, i) => m === `m${i}`);
  }

  get counts(): { sent: number; received: number } {
    return { sent: this.#sent, received: this.#received.length };
  }
}

const GOOD = new Set<WsLibrary>();

/** Terminates every well-behaved client (call in `afterEach`). */
export function closeGoodClients(): void {
  for (const ws of GOOD) ws.terminate();
  GOOD.clear();
}
