/**
 * reconnect(): against a real server that is stopped and started again, that refuses with 503 and Retry-After, then
 * with 401 (which ends the loop); a server that accepts and closes at once (backoff, not a busy loop); `break` and
 * `signal`; and, without sockets, Python websockets' backoff sequence, its variables, Retry-After and which errors
 * are retried.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { resolveBackoff } from '../../lib/config/index.js';
import {
  ConfigError,
  HandshakeLimitError,
  IncompleteResponseError,
  InvalidStatusError,
  OpenTimeoutError,
  ProxyError,
} from '../../lib/errors.js';
import { backoffDelays, isTransientError, reconnect, retryAfterMs, type ReconnectOptions, type RetryEvent } from '../../lib/node/reconnect.js';
import { WebSocketServer, type HandshakeDecision } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { withTimeout } from '../support/net.js';
import { next, QUIET, WAIT_MS } from './harness.js';

const servers = new Set<WebSocketServer>();
afterEach(async () => {
  await Promise.all([...servers].map((server) => server.close()));
  servers.clear();
});

/** Backoff small enough for a test, with a maximum that still lets a 1 s Retry-After through. */
const FAST: ReconnectOptions = {
  env: {},
  pingIntervalMs: null,
  backoffInitialDelayMs: 40,
  backoffMinDelayMs: 40,
  backoffFactor: 2,
  backoffMaxDelayMs: 2000,
};

/** Our server on 127.0.0.1:`port` whose handshake hook asks `decide()`; each connection is greeted with its number. */
async function serverOn(port: number, decide: () => HandshakeDecision): Promise<{ server: WebSocketServer; port: number }> {
  const server = new WebSocketServer({ ...QUIET, host: '127.0.0.1', port, handshake: () => decide() });
  servers.add(server);
  let count = 0;
  server.on('connection', (ws: WebSocket) => void ws.send(`hello ${++count}`));
  const address = (await server.listen()) as AddressInfo;
  return { server, port: address.port };
}

describe('reconnect() against a real server', () => {
  it('comes back after the server restarts, waits as Retry-After says on 503, and stops on 401', async () => {
    let mode: 'accept' | 'busy' | 'deny' = 'accept';
    const decide = (): HandshakeDecision =>
      mode === 'busy'
        ? { reject: { status: 503, headers: { 'Retry-After': '1' }, body: 'maintenance' } }
        : mode === 'deny'
          ? { reject: { status: 401, body: 'who are you?' } }
          : undefined;
    const first = await serverOn(0, decide);
    const port = first.port;
    const retries: Array<RetryEvent & { at: number }> = [];
    const greetings: Array<{ text: string; at: number }> = [];
    let restarted: Promise<unknown> | undefined;
    const options: ReconnectOptions = {
      ...FAST,
      onRetry: (event) => {
        retries.push({ ...event, at: performance.now() });
        const code = (event.error as NodeJS.ErrnoException | null)?.code;
        // The server is down: bring it back on the same port, as a restarted service would be.
        if (code === 'ECONNREFUSED' && restarted === undefined) restarted = serverOn(port, decide);
        // One 503 is enough: the next attempt (after Retry-After) finds the server willing again.
        if (event.error instanceof InvalidStatusError && event.error.status === 503) mode = 'accept';
      },
    };

    const loop = (async () => {
      for await (const ws of reconnect(`ws://127.0.0.1:${port}/`, options)) {
        const [text] = await next<[string]>(ws, 'message');
        greetings.push({ text, at: performance.now() });
        if (greetings.length === 1) {
          // The server goes away: clients get 1001 and the loop body is done with this connection.
          await first.server.close();
        } else if (greetings.length === 2) {
          mode = 'busy';
          await ws.close();
        } else {
          mode = 'deny';
          await ws.close();
        }
      }
    })();
    const error = await withTimeout(loop.then(() => undefined, (e: unknown) => e), 10_000, 'the loop to end');
    expect(error).toBeInstanceOf(InvalidStatusError);
    expect(error).toMatchObject({ status: 401 });
    expect((error as InvalidStatusError).body.toString()).toContain('who are you?');

    // First server, restarted server, and the same restarted server once it is no longer busy.
    expect(greetings.map((g) => g.text)).toEqual(['hello 1', 'hello 1', 'hello 2']);
    // While the server was down: refused attempts (and, first, the connection that ended within backoffMinDelayMs)
    // waited Python's sequence, scaled: a random first delay up to the initial delay, then min x factor^n.
    const down = retries.filter((r) => r.at < greetings[1]!.at);
    expect(down.some((r) => (r.error as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED')).toBe(true);
    expect(down.every((r) => r.error === null || (r.error as NodeJS.ErrnoException).code === 'ECONNREFUSED')).toBe(true);
    expect(down[0]!.delayMs).toBeLessThan(40);
    down.slice(1).forEach((r, i) => expect(r.delayMs).toBe(Math.min(40 * 2 ** i, 2000)));
    const busy = retries.filter((r) => r.error instanceof InvalidStatusError && r.error.status === 503);
    expect(busy).toHaveLength(1);
    expect(busy[0]!.delayMs).toBe(1000);
    // The attempt after the 503 waited for Retry-After (timer precision allows a little less than 1000 ms).
    expect(greetings[2]!.at - busy[0]!.at).toBeGreaterThanOrEqual(950);
    // The 401 was not retried.
    expect(retries.some((r) => r.error instanceof InvalidStatusError && r.error.status === 401)).toBe(false);
  });

  it('backs off from a server that accepts and closes at once, instead of reconnecting in a loop', async () => {
    const { server, port } = await serverOn(0, () => undefined);
    server.on('connection', (ws: WebSocket) => void ws.close(1000, 'go away'));
    const retries: RetryEvent[] = [];
    let yielded = 0;
    // A minimum delay well above what a connection closed at once lives, even on a loaded machine.
    const options: ReconnectOptions = { ...FAST, backoffMinDelayMs: 300, backoffFactor: 1.5, onRetry: (event) => retries.push(event) };
    for await (const ws of reconnect(`ws://127.0.0.1:${port}/`, options)) {
      if (ws.readyState !== ws.CLOSED) await next(ws, 'close');
      if (++yielded === 4) break;
    }
    // Each connection ended sooner than backoffMinDelayMs: a failed attempt (error null), delays growing.
    expect(retries.map((r) => r.error)).toEqual([null, null, null]);
    expect(retries[0]!.delayMs).toBeLessThan(40);
    expect(retries.slice(1).map((r) => r.delayMs)).toEqual([300, 450]);
  });

  it('reconnects at once after a connection that lasted longer than backoffMinDelayMs', async () => {
    const { server, port } = await serverOn(0, () => undefined);
    // Well over backoffMinDelayMs (40 ms): the connection counts as one that worked.
    server.on('connection', (ws: WebSocket) => setTimeout(() => void ws.close(1001, 'restarting'), 200));
    const retries: RetryEvent[] = [];
    let yielded = 0;
    for await (const ws of reconnect(`ws://127.0.0.1:${port}/`, { ...FAST, onRetry: (event) => retries.push(event) })) {
      const [code] = await next<[number]>(ws, 'close');
      expect(code).toBe(1001);
      if (++yielded === 3) break;
    }
    expect(retries).toEqual([]);
  });

  it('closes the current connection with 1000 on break, and ends a wait at once on abort', async () => {
    const { server, port } = await serverOn(0, () => undefined);
    const codes: number[] = [];
    server.on('connection', (ws: WebSocket) => ws.on('close', (code: number) => codes.push(code)));
    for await (const ws of reconnect(`ws://127.0.0.1:${port}/`, FAST)) {
      await next(ws, 'message');
      break;
    }
    await withTimeout((async () => { while (codes.length === 0) await new Promise((r) => setTimeout(r, 10)); })(), WAIT_MS, 'the server to see the close');
    expect(codes).toEqual([1000]);

    const closedPort = await freeClosedPort();
    const controller = new AbortController();
    const slow: ReconnectOptions = { ...FAST, backoffInitialDelayMs: 60_000, backoffMinDelayMs: 60_000, backoffMaxDelayMs: 60_000 };
    let yields = 0;
    const started = performance.now();
    for await (const _ws of reconnect(`ws://127.0.0.1:${closedPort}/`, { ...slow, signal: controller.signal, onRetry: () => controller.abort() })) {
      yields++;
    }
    expect(yields).toBe(0);
    expect(performance.now() - started).toBeLessThan(WAIT_MS);
  });

  it('throws a configuration error before connecting', async () => {
    const loop = reconnect('ws://127.0.0.1:1/', { env: { WEBSOCKETS_BACKOFF_FACTOR: '0.5' } });
    await expect(loop.next()).rejects.toThrow(
      'WEBSOCKETS_BACKOFF_FACTOR must be a number of at least 1 (e.g. 1.618); got "0.5" (option backoffFactor, env WEBSOCKETS_BACKOFF_FACTOR)',
    );
  });
});

describe('the backoff', () => {
  it("is Python websockets' sequence by default: random up to 5 s, then 3.1 s x 1.618 up to 90 s", () => {
    const delays = backoffDelays(resolveBackoff({}, {}), () => 0.5);
    const first = Array.from({ length: 12 }, () => delays.next().value);
    // The same numbers as Python's backoff() (in seconds: 3.1, 5.0158, ..., 89.994, then 90.0), rounded to ms.
    expect(first).toEqual([2500, 3100, 5016, 8116, 13131, 21246, 34376, 55620, 89994, 90000, 90000, 90000]);
  });

  it('reads its variables in seconds, as Python does, and its options in ms', () => {
    expect(
      resolveBackoff({}, {
        WEBSOCKETS_BACKOFF_INITIAL_DELAY: '0.25',
        WEBSOCKETS_BACKOFF_MIN_DELAY: '1',
        WEBSOCKETS_BACKOFF_FACTOR: '2',
        WEBSOCKETS_BACKOFF_MAX_DELAY: '60',
      }),
    ).toEqual({ initialDelayMs: 250, minDelayMs: 1000, factor: 2, maxDelayMs: 60_000 });
    expect(resolveBackoff({ backoffMinDelayMs: 500, backoffFactor: 1 }, { WEBSOCKETS_BACKOFF_MIN_DELAY: '9' })).toMatchObject({ minDelayMs: 500, factor: 1 });
    expect(resolveBackoff({ backoffInitialDelayMs: 0 }, {}).initialDelayMs).toBe(0);
  });

  it.each([
    [{}, { WEBSOCKETS_BACKOFF_MIN_DELAY: '0' }, 'WEBSOCKETS_BACKOFF_MIN_DELAY must be a number of seconds (e.g. 3.1) above 0; got "0"'],
    [{}, { WEBSOCKETS_BACKOFF_MAX_DELAY: '1e3' }, 'WEBSOCKETS_BACKOFF_MAX_DELAY must be a number of seconds (e.g. 3.1) above 0; got "1e3"'],
    [{}, { WEBSOCKETS_BACKOFF_INITIAL_DELAY: '-1' }, 'WEBSOCKETS_BACKOFF_INITIAL_DELAY must be a number of seconds (e.g. 3.1); got "-1"'],
    [{ backoffFactor: 0.9 }, {}, 'option backoffFactor must be a number of at least 1; got 0.9'],
    [{ backoffMinDelayMs: 1.5 }, {}, 'option backoffMinDelayMs must be an integer of at least 1 (milliseconds); got 1.5'],
    [{ backoffMaxDelayMs: 100 }, {}, 'backoffMaxDelayMs (100 ms) must not be below backoffMinDelayMs (3100 ms)'],
  ])('refuses %j with %j', (options, env, message) => {
    expect(() => resolveBackoff(options, env)).toThrow(ConfigError);
    expect(() => resolveBackoff(options, env)).toThrow(message);
  });
});

describe('what is retried', () => {
  it('reads Retry-After in seconds or as an HTTP date, from a server or a proxy', () => {
    const refusal = (value: string) => new InvalidStatusError(503, [['Retry-After', value]], Buffer.alloc(0));
    expect(retryAfterMs(refusal('120'))).toBe(120_000);
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(retryAfterMs(refusal('Wed, 21 Oct 2015 07:28:30 GMT'), now)).toBe(30_000);
    expect(retryAfterMs(refusal('Wed, 21 Oct 2015 07:27:00 GMT'), now)).toBe(0);
    expect(retryAfterMs(refusal('soon'))).toBeNull();
    expect(retryAfterMs(new InvalidStatusError(503, [], Buffer.alloc(0)))).toBeNull();
    expect(retryAfterMs(new ProxyError('x', { proxy: 'http://p:1', status: 503, responseHeaders: [['retry-after', '2']] }))).toBe(2000);
    expect(retryAfterMs(new Error('x'))).toBeNull();
  });

  it('retries network errors, timeouts and 500/502/503/504, and nothing else', () => {
    const status = (code: number) => new InvalidStatusError(code, [], Buffer.alloc(0));
    const system = (code: string) => Object.assign(new Error(code), { code, syscall: 'connect' });
    for (const error of [
      system('ECONNREFUSED'), system('ENOENT'), system('EHOSTUNREACH'), Object.assign(new Error('reset'), { code: 'ECONNRESET' }),
      new OpenTimeoutError(10), new IncompleteResponseError('closed'), status(500), status(502), status(503), status(504),
      new ProxyError('x', { proxy: 'http://p:1', status: 502, responseHeaders: [] }),
      new ProxyError('x', { proxy: 'socks5://p:1', status: 4 }),
      new ProxyError('x', { proxy: 'http://p:1' }, { cause: new IncompleteResponseError('closed') }),
    ]) {
      expect([error.message, isTransientError(error)]).toEqual([error.message, true]);
    }
    for (const error of [
      status(400), status(401), status(403), status(404), status(429), status(501), new HandshakeLimitError('status-line', 8192, 9000),
      new ConfigError('x', 'proxy', 'x'), new ProxyError('x', { proxy: 'http://p:1', status: 407, responseHeaders: [] }),
      new ProxyError('x', { proxy: 'socks5://p:1', status: 2 }), new ProxyError('x', { proxy: 'socks5://p:1', reason: 'authentication failed' }),
      Object.assign(new Error('bad certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }), new Error('plain'), 'a string', null,
    ]) {
      expect([String(error), isTransientError(error)]).toEqual([String(error), false]);
    }
  });
});

/** A port on 127.0.0.1 that nothing listens on (a moment ago). */
async function freeClosedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
