/**
 * Connection limits: maxConnections, maxConnectionsPerAddress and maxHandshakesPerSecondPerAddress, at their exact
 * boundaries, in the admission logic (with a fake clock) and over real sockets (own port, attached, Nest module):
 * the connection over a limit gets 503 with Retry-After before the upgrade, and the connections under it keep
 * working.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { resolveConfig, type ConnectionLimits } from '../../lib/config/index.js';
import { ConfigError, ConnectionLimitError } from '../../lib/errors.js';
import { Admission, isRefusal, type AdmissionTicket } from '../../lib/node/admission.js';
import { WebSocketServer } from '../../lib/node/server.js';
import { resolveWebSocketsOptions } from '../../lib/nest/websockets-options.js';
import type { WebSocketsGatewayOptions, WebSocketsModuleOptions } from '../../lib/nest/websockets-options.interface.js';
import { Harness } from '../node/harness.js';
import { closeGoodClients, destroyPeers, GoodClient, RawPeer, upgradeRequest, WAIT_MS } from './peer.js';
import { closeNestApps, startNestApp } from '../support/nest-app.js';

const NONE: ConnectionLimits = { maxConnections: null, maxConnectionsPerAddress: null, maxHandshakesPerSecondPerAddress: null };

function ticket(result: AdmissionTicket | ConnectionLimitError): AdmissionTicket {
  if (isRefusal(result)) throw new Error(`refused: ${result.message}`);
  return result;
}

function refusal(result: AdmissionTicket | ConnectionLimitError): ConnectionLimitError {
  if (!isRefusal(result)) throw new Error('admitted');
  return result;
}

describe('connection limit settings', () => {
  it('are off by default (null), spelled null in options and off in the environment', () => {
    expect(resolveConfig({}, {}).connectionLimits).toEqual(NONE);
    const env = {
      WEBSOCKETS_MAX_CONNECTIONS: '1000',
      WEBSOCKETS_MAX_CONNECTIONS_PER_ADDRESS: '20',
      WEBSOCKETS_MAX_HANDSHAKES_PER_SECOND_PER_ADDRESS: '5',
    };
    expect(resolveConfig({}, env).connectionLimits).toEqual({ maxConnections: 1000, maxConnectionsPerAddress: 20, maxHandshakesPerSecondPerAddress: 5 });
    expect(resolveConfig({ maxConnections: null, maxConnectionsPerAddress: 3 }, env).connectionLimits).toEqual({
      maxConnections: null,
      maxConnectionsPerAddress: 3,
      maxHandshakesPerSecondPerAddress: 5,
    });
    expect(resolveConfig({}, { WEBSOCKETS_MAX_CONNECTIONS: 'off', WEBSOCKETS_MAX_CONNECTIONS_PER_ADDRESS: '' }).connectionLimits).toEqual(NONE);
  });

  it('refuse 0 (never "unlimited"), negatives and non-integers, naming the option or variable', () => {
    expect(() => resolveConfig({ maxConnections: 0 }, {})).toThrow(
      'option maxConnections must be a positive integer (connections, or null for no limit); got 0 (option maxConnections, env WEBSOCKETS_MAX_CONNECTIONS)',
    );
    expect(() => resolveConfig({}, { WEBSOCKETS_MAX_HANDSHAKES_PER_SECOND_PER_ADDRESS: '0' })).toThrow(
      'WEBSOCKETS_MAX_HANDSHAKES_PER_SECOND_PER_ADDRESS must be a positive integer (handshakes per second, or off for no limit); got "0"',
    );
    expect(() => resolveConfig({}, { WEBSOCKETS_MAX_CONNECTIONS_PER_ADDRESS: '2k' })).toThrow(ConfigError);
    expect(() => resolveConfig({ maxConnectionsPerAddress: 1.5 }, {})).toThrow(ConfigError);
  });

  it('are accepted by the Nest module, from options and from its environment', () => {
    const resolved = resolveWebSocketsOptions({ maxConnections: 10, env: { WEBSOCKETS_MAX_CONNECTIONS_PER_ADDRESS: '2' } });
    expect(resolved.config.connectionLimits).toEqual({ maxConnections: 10, maxConnectionsPerAddress: 2, maxHandshakesPerSecondPerAddress: null });
    expect(() => resolveWebSocketsOptions({ maxConnection: 1 } as WebSocketsModuleOptions)).toThrow(/did you mean maxConnections\?/);
  });
});

describe('Admission', () => {
  it('maxConnections: exactly the limit is admitted, one more is refused with Retry-After 1, a release frees a slot', () => {
    const admission = new Admission({ ...NONE, maxConnections: 3 });
    const tickets = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((address) => ticket(admission.admit(address)));
    const refused = refusal(admission.admit('10.0.0.4'));
    expect(refused).toMatchObject({ code: 'WS_ERR_CONNECTION_LIMIT', httpStatus: 503, setting: 'maxConnections', limit: 3, retryAfterSeconds: 1 });
    expect(refused.headers).toEqual({ 'Retry-After': '1' });
    expect(refused.message).toBe('too many connections to this server; the limit is 3 (option maxConnections, env WEBSOCKETS_MAX_CONNECTIONS)');
    tickets[0]!.release();
    tickets[0]!.release(); // idempotent: frees one slot only
    expect(admission.open).toBe(2);
    ticket(admission.admit('10.0.0.4'));
    refusal(admission.admit('10.0.0.5'));
  });

  it('maxConnectionsPerAddress: counts each address apart (IPv4-mapped IPv6 is the same address)', () => {
    const admission = new Admission({ ...NONE, maxConnectionsPerAddress: 2 });
    const a = ticket(admission.admit('10.0.0.1'));
    ticket(admission.admit('::ffff:10.0.0.1'));
    expect(refusal(admission.admit('10.0.0.1')).setting).toBe('maxConnectionsPerAddress');
    ticket(admission.admit('10.0.0.2'));
    ticket(admission.admit('::1'));
    a.release();
    ticket(admission.admit('10.0.0.1'));
    // Unknown addresses (a socket already gone) only count toward maxConnections.
    ticket(admission.admit(undefined));
    ticket(admission.admit(undefined));
    ticket(admission.admit(undefined));
  });

  it('maxHandshakesPerSecondPerAddress: a burst of N, then one per 1/N s, with Retry-After until the next token', () => {
    let now = 0;
    const admission = new Admission({ ...NONE, maxHandshakesPerSecondPerAddress: 4 }, () => now);
    for (let i = 0; i < 4; i++) ticket(admission.admit('10.0.0.1')).release();
    const refused = refusal(admission.admit('10.0.0.1'));
    expect(refused).toMatchObject({ setting: 'maxHandshakesPerSecondPerAddress', limit: 4, retryAfterSeconds: 1 });
    ticket(admission.admit('10.0.0.2')); // another address has its own bucket
    now = 249.9;
    refusal(admission.admit('10.0.0.1'));
    now = 250;
    ticket(admission.admit('10.0.0.1'));
    refusal(admission.admit('10.0.0.1'));
    now = 10_000; // the bucket refills to N, never more
    for (let i = 0; i < 4; i++) ticket(admission.admit('10.0.0.1'));
    refusal(admission.admit('10.0.0.1'));
  });

  it('Retry-After is the wait for the next token in whole seconds, rounded up, at least 1', () => {
    let now = 0;
    const admission = new Admission({ ...NONE, maxHandshakesPerSecondPerAddress: 1 }, () => now);
    ticket(admission.admit('10.0.0.1'));
    expect(refusal(admission.admit('10.0.0.1')).retryAfterSeconds).toBe(1);
    now = 999;
    expect(refusal(admission.admit('10.0.0.1')).retryAfterSeconds).toBe(1);
    now = 1000;
    ticket(admission.admit('10.0.0.1'));
  });

  it('keeps a bounded number of address entries under a flood of new addresses', () => {
    let now = 0;
    const admission = new Admission({ ...NONE, maxHandshakesPerSecondPerAddress: 2, maxConnectionsPerAddress: 1 }, () => now);
    let most = 0;
    for (let i = 0; i < 20_000; i++) {
      now += 1; // 1000 new addresses per second, each connecting once and leaving
      ticket(admission.admit(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)).release();
      most = Math.max(most, admission.trackedAddresses);
    }
    expect(most).toBeLessThanOrEqual(2048);
    // Without a rate limit, an address leaves the table with its last connection.
    const plain = new Admission({ ...NONE, maxConnectionsPerAddress: 1 });
    ticket(plain.admit('10.0.0.1')).release();
    expect(plain.trackedAddresses).toBe(0);
  });
});

const harness = new Harness();
afterEach(async () => {
  destroyPeers();
  closeGoodClients();
  await harness.cleanup();
});

function echo(server: WebSocketServer): void {
  server.on('connection', (ws) => ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }).catch(() => undefined)));
}

/** Sends a handshake from `localAddress` and returns the status line and the head. */
async function handshake(port: number, localAddress = '127.0.0.1', path = '/'): Promise<{ peer: RawPeer; head: string }> {
  const peer = await RawPeer.connect(port, { localAddress });
  await peer.write(upgradeRequest(path)).catch(() => undefined);
  return { peer, head: await peer.head() };
}

function expect503(head: string): void {
  expect(head).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
  expect(head).toMatch(/\r\nRetry-After: 1(\r\n|$)/);
  expect(head).toMatch(/\r\nConnection: close(\r\n|$)/);
  expect(head).toMatch(/\r\nServer: Node\.js\//);
  expect(head).toContain('\r\nContent-Length: ');
}

describe('connection limits over real sockets', () => {
  it('maxConnections: N connections open, N + 1 gets 503 before the upgrade, the N keep working, a freed slot is reusable', async () => {
    const { server, port, url } = await harness.listen({ maxConnections: 2 });
    echo(server);
    const refusals: ConnectionLimitError[] = [];
    server.on('handshakeError', (error: ConnectionLimitError) => refusals.push(error));
    const good = [await GoodClient.open(url), await GoodClient.open(url)];
    const { peer, head } = await handshake(port);
    expect503(head);
    const body = (await peer.closedByServer()).toString('latin1');
    expect(body).toContain('Failed to open a WebSocket connection: too many connections to this server; the limit is 2 (option maxConnections');
    expect(refusals.map((e) => e.setting)).toEqual(['maxConnections']);
    for (const client of good) await client.exchange(20);
    expect(good.every((client) => client.intact)).toBe(true);

    const closed = new Promise((resolve) => [...server.clients][0]!.once('close', resolve));
    good[0]!.ws.close();
    await closed;
    const again = await GoodClient.open(url);
    await again.exchange(5);
    expect(again.intact).toBe(true);
    expect(server.clients.size).toBe(2);
  });

  it('maxConnectionsPerAddress: the limit holds per address, handshakes in progress included, until openTimeoutMs frees the slot', async () => {
    const { server, port, url } = await harness.listen({ maxConnectionsPerAddress: 2, openTimeoutMs: 300 });
    echo(server);
    const good = await GoodClient.open(url);
    const silent = await RawPeer.connect(port); // a handshake in progress that sends nothing
    const over = await handshake(port);
    expect503(over.head);
    expect((await over.peer.closedByServer()).toString('latin1')).toContain('too many connections from this address; the limit is 2');
    // Another address is not affected.
    const other = await handshake(port, '127.0.0.2');
    expect(other.head).toMatch(/^HTTP\/1\.1 101 /);
    // The silent socket is cut at openTimeoutMs, which frees its slot.
    await silent.closedByServer(WAIT_MS);
    const after = await handshake(port);
    expect(after.head).toMatch(/^HTTP\/1\.1 101 /);
    await good.exchange(10);
    expect(good.intact).toBe(true);
  });

  it('maxHandshakesPerSecondPerAddress: a burst of N succeeds, N + 1 gets 503, other addresses are not affected', async () => {
    const { server, port, url } = await harness.listen({ maxHandshakesPerSecondPerAddress: 3 });
    echo(server);
    const good = await GoodClient.open(url); // from 127.0.0.1
    // Sockets of the burst connect in parallel from 127.0.0.3, so that no token is refilled between them.
    const peers = await Promise.all([0, 1, 2, 3].map(() => RawPeer.connect(port, { localAddress: '127.0.0.3' })));
    await Promise.all(peers.map((peer) => peer.write(upgradeRequest()).catch(() => undefined)));
    const heads = await Promise.all(peers.map((peer) => peer.head()));
    const statuses = heads.map((head) => head.slice(9, 12)).sort();
    expect(statuses).toEqual(['101', '101', '101', '503']);
    expect503(heads.find((head) => head.includes(' 503 '))!);
    const fresh = await handshake(port, '127.0.0.4');
    expect(fresh.head).toMatch(/^HTTP\/1\.1 101 /);
    await good.exchange(10);
    expect(good.intact).toBe(true);
  });

  it('applies in attach mode too (the request was parsed by Node: 503 instead of the upgrade)', async () => {
    const { server: httpServer, port } = await harness.httpServer();
    const server = harness.attach({ server: httpServer, path: '/ws', maxConnections: 1 });
    echo(server);
    const good = await GoodClient.open(`ws://127.0.0.1:${port}/ws`);
    const peer = await RawPeer.connect(port);
    await peer.write(upgradeRequest('/ws'));
    expect503(await peer.head());
    await good.exchange(5);
    expect(good.intact).toBe(true);
  });
});

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/ws' })
class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return data;
  }
}

describe('connection limits in the Nest module', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    destroyPeers();
    await closeNestApps();
    app = undefined;
  });

  async function start(options: WebSocketsModuleOptions): Promise<number> {
    const started = await startNestApp({ providers: [EchoGateway], options: { pingIntervalMs: null, closeTimeoutMs: 500, ...options } });
    app = started.app;
    return started.port;
  }

  it('maxConnectionsPerAddress from forRoot, and WEBSOCKETS_MAX_CONNECTIONS from the module environment', async () => {
    let port = await start({ maxConnectionsPerAddress: 1, env: {} });
    const first = await handshake(port, '127.0.0.1', '/ws');
    expect(first.head).toMatch(/^HTTP\/1\.1 101 /);
    expect503((await handshake(port, '127.0.0.1', '/ws')).head);
    expect((await handshake(port, '127.0.0.2', '/ws')).head).toMatch(/^HTTP\/1\.1 101 /);
    destroyPeers();
    await app!.close();

    port = await start({ env: { WEBSOCKETS_MAX_CONNECTIONS: '2' } });
    expect((await handshake(port, '127.0.0.1', '/ws')).head).toMatch(/^HTTP\/1\.1 101 /);
    expect((await handshake(port, '127.0.0.2', '/ws')).head).toMatch(/^HTTP\/1\.1 101 /);
    expect503((await handshake(port, '127.0.0.3', '/ws')).head);
  });
});
