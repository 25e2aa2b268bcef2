/**
 * Small network helpers for tests over real sockets: a bounded wait, a raw TCP (or TLS) connection that collects
 * bytes until a predicate holds (for byte-level HTTP and frame tests), a client-initiated TLS renegotiation, and a
 * free port for peers that cannot listen on port 0 themselves. Prefer port 0 wherever the code under test can
 * report the port it got.
 */
import { once } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';

/**
 * The one bound on a wait in these tests (an echo, a close, a handshake): long enough for a loaded 2-core machine,
 * short enough that a hang fails the test well inside jest's timeout. Waits that involve starting a process or a
 * Redis server take a multiple of it.
 */
export const WAIT_MS = 5000;

/**
 * Resolves or rejects as `promise` does, or rejects after `ms` milliseconds with an error that names `what`.
 * The timer is cleared either way, so a passing test leaves nothing behind.
 * @throws Error `<what> did not happen within <ms> ms`
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Polls `condition` every `everyMs` until it holds; rejects after `ms` with an error that names `what`. The polling
 * stops either way, so a failing test leaves no timer behind.
 * @throws Error `<what> did not happen within <ms> ms`
 */
export async function waitUntil(condition: () => boolean, ms: number, what: string, everyMs = 10): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() >= deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A port that was free a moment ago on `host`. Racy by nature: only for peers that cannot listen on port 0. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** True once the bytes hold a complete HTTP head (status or request line and headers, up to the blank line). */
export function endOfHttpHead(received: Buffer): boolean {
  return received.includes('\r\n\r\n');
}

/** A raw connection: everything the peer sent is kept in `received`, in order. */
export interface RawConnection {
  readonly socket: net.Socket;
  /** Every byte received so far. */
  received(): Buffer;
  /** Writes bytes (or a latin1 string, so that any byte can be written) and resolves once they are flushed. */
  write(data: Buffer | string): Promise<void>;
  /**
   * Resolves with all the bytes received so far once `predicate(received)` holds; rejects if the peer closes first
   * (the message includes what was received) or after `ms` milliseconds.
   */
  readUntil(predicate: (received: Buffer) => boolean, ms: number, what: string): Promise<Buffer>;
  /** Resolves with all the bytes received once the peer has closed the connection, or rejects after `ms`. */
  readUntilClose(ms: number): Promise<Buffer>;
  /** True once the socket is closed (by either side). */
  readonly closed: boolean;
  /** Destroys the socket; safe to call twice. */
  destroy(): void;
}

/** Options of `rawConnect`. */
export interface RawConnectOptions {
  /** Connect over TLS with these options (e.g. `{ ca, servername: 'localhost' }`). */
  tls?: tls.ConnectionOptions;
  /** Bound on the connection (and TLS handshake) time. @default 5000 */
  timeoutMs?: number;
}

const openConnections = new Set<RawConnection>();

/**
 * Opens a TCP (or TLS) connection to `host:port` and starts collecting what the peer sends.
 * Call `destroyRawConnections()` in `afterEach` to close any that a failing test left open.
 * @throws Error when the connection is refused or not established within the timeout
 */
export async function rawConnect(port: number, host = '127.0.0.1', options: RawConnectOptions = {}): Promise<RawConnection> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const socket = options.tls
    ? tls.connect({ port, host, ...options.tls })
    : net.connect({ port, host });
  const chunks: Buffer[] = [];
  let closed = false;
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const waiter of [...waiters]) waiter();
  };
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    notify();
  });
  socket.on('close', () => {
    closed = true;
    notify();
  });
  // Errors (ECONNRESET from a server that refuses) surface as 'close'; keep them from crashing the test process.
  socket.on('error', () => undefined);
  try {
    await withTimeout(once(socket, options.tls ? 'secureConnect' : 'connect'), timeoutMs, `connection to ${host}:${port}`);
  } catch (error) {
    socket.destroy();
    throw error;
  }

  const received = (): Buffer => Buffer.concat(chunks);
  const wait = (done: () => Buffer | undefined, failure: () => Error | undefined, ms: number, what: string): Promise<Buffer> => {
    let check: () => void = () => undefined;
    const settled = new Promise<Buffer>((resolve, reject) => {
      check = (): void => {
        const result = done();
        const error = result === undefined ? failure() : undefined;
        if (result === undefined && error === undefined) return;
        waiters.delete(check);
        if (result !== undefined) resolve(result);
        else reject(error);
      };
      waiters.add(check);
      check();
    });
    return withTimeout(settled, ms, what).finally(() => waiters.delete(check));
  };

  const connection: RawConnection = {
    socket,
    received,
    get closed() {
      return closed;
    },
    write(data) {
      return new Promise<void>((resolve, reject) => {
        socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, (error) => (error ? reject(error) : resolve()));
      });
    },
    readUntil(predicate, ms, what) {
      return wait(
        () => {
          const bytes = received();
          return predicate(bytes) ? bytes : undefined;
        },
        () => (closed ? new Error(`connection closed before ${what}; received ${JSON.stringify(received().toString('latin1'))}`) : undefined),
        ms,
        what,
      );
    },
    readUntilClose(ms) {
      return wait(() => (closed ? received() : undefined), () => undefined, ms, 'the peer closing the connection');
    },
    destroy() {
      openConnections.delete(connection);
      socket.destroy();
    },
  };
  openConnections.add(connection);
  return connection;
}

/** Destroys every raw connection still open; call it in `afterEach`. */
export function destroyRawConnections(): void {
  for (const connection of [...openConnections]) connection.destroy();
}

/**
 * One client-initiated TLS renegotiation (TLS 1.2 only; connect with `maxVersion: 'TLSv1.2'`).
 * @returns `'done'` when it completed, else what stopped it: an error code, `'closed'` when the socket closed first,
 *   or `'not started'`
 * @throws Error when nothing happened within `ms`
 */
export function renegotiate(socket: tls.TLSSocket, ms = 5000): Promise<string> {
  if (socket.destroyed) return Promise.resolve('closed');
  const attempt = new Promise<string>((resolve) => {
    const onClose = (): void => resolve('closed');
    socket.once('close', onClose);
    const started = socket.renegotiate({ rejectUnauthorized: true }, (error) => {
      socket.off('close', onClose);
      resolve(error === null || error === undefined ? 'done' : ((error as NodeJS.ErrnoException).code ?? error.message));
    });
    if (!started) resolve('not started');
  });
  return withTimeout(attempt, ms, 'a renegotiation');
}
