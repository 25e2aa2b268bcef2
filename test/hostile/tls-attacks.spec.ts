/**
 * Attacks on the TLS layer of the Node servers, over real TLS 1.2 sockets on 127.0.0.1: a client that renegotiates
 * after the upgrade, on a server on its own port and on one attached to an `https` server. Node only limits
 * client-initiated renegotiation (3 in 10 minutes, then an 'error' on the socket, which must end the connection);
 * the servers of this package refuse the first one. Each test checks the attacker's socket is closed, the server
 * reports 1006 for it locally, and a well-behaved client on the same server goes on.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import type { WebSocketServer } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { makeTestCertificates, type TestCertificates } from '../support/certs.js';
import { renegotiate, waitUntil } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { Harness } from '../node/harness.js';
import { closeGoodClients, destroyPeers, GoodClient, RawPeer, upgradeRequest, WAIT_MS } from './peer.js';

const harness = new Harness();
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  destroyPeers();
  closeGoodClients();
  await harness.cleanup();
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** How many renegotiations the attacker tries: more than Node's own limit of 3 per 10 minutes. */
const ATTEMPTS = 6;

/** Echoes, and records the close code of every connection and any error the server reports as its own. */
function observe(server: WebSocketServer): { closes: number[]; errors: Error[] } {
  const closes: number[] = [];
  const errors: Error[] = [];
  server.on('error', (error: Error) => errors.push(error));
  server.on('connection', (ws: WebSocket) => {
    ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }).catch(() => undefined));
    ws.on('close', (code: number) => closes.push(code));
  });
  return { closes, errors };
}

/** A TLS 1.2 client past the opening handshake (TLS 1.3 has no renegotiation). */
async function upgradedOverTls12(port: number, certs: TestCertificates): Promise<RawPeer> {
  const peer = await RawPeer.connect(port, { tls: { ca: certs.ca.cert, servername: 'localhost', maxVersion: 'TLSv1.2' } });
  await peer.write(upgradeRequest());
  expect(await peer.head()).toMatch(/^HTTP\/1\.1 101 /);
  return peer;
}

/** Renegotiates until the server stops it (or `ATTEMPTS` times); returns how many completed. */
async function renegotiationFlood(peer: RawPeer): Promise<{ completed: number; outcomes: string[] }> {
  const outcomes: string[] = [];
  for (let i = 0; i < ATTEMPTS && !peer.closed; i++) outcomes.push(await renegotiate(peer.socket as tls.TLSSocket));
  return { completed: outcomes.filter((outcome) => outcome === 'done').length, outcomes };
}

describeWithPeer('openssl', 'TLS renegotiation after the upgrade', () => {
  describe.each(['on its own port', 'attached to an https server'] as const)('on a server %s', (mode) => {
    it('is refused at the first attempt: the connection ends (1006 locally), the server and its other clients go on', async () => {
      const certs = await makeTestCertificates();
      let server: WebSocketServer;
      let port: number;
      if (mode === 'on its own port') {
        ({ server, port } = await harness.listen({ tls: { key: certs.server.key, cert: certs.server.cert } }));
      } else {
        const httpsServer = https.createServer({ key: certs.server.key, cert: certs.server.cert });
        httpsServer.listen(0, '127.0.0.1');
        await once(httpsServer, 'listening');
        closers.push(
          () =>
            new Promise((resolve) => {
              httpsServer.closeAllConnections();
              httpsServer.close(() => resolve());
            }),
        );
        server = harness.attach({ server: httpsServer });
        port = (httpsServer.address() as AddressInfo).port;
      }
      const seen = observe(server);
      const good = await GoodClient.open(`wss://localhost:${port}/`, { ca: certs.ca.cert });
      await good.exchange(10);

      const attacker = await upgradedOverTls12(port, certs);
      const { completed, outcomes } = await renegotiationFlood(attacker);
      await attacker.closedByServer(WAIT_MS).catch(() => undefined);
      expect({ completed, closed: attacker.closed, outcomes: outcomes.length }).toEqual({ completed: 0, closed: true, outcomes: 1 });
      await waitUntil(() => seen.closes.length === 1, WAIT_MS, 'the server to see the attacker close');
      expect(seen.closes).toEqual([CloseCode.ABNORMAL_CLOSURE]);

      await good.exchange(50);
      expect(good.intact).toBe(true);
      expect(seen.errors).toEqual([]);
      expect(server.clients.size).toBe(1);
    });
  });

  it('is refused before the upgrade too, on a server on its own port: no 101, the socket ends', async () => {
    const certs = await makeTestCertificates();
    const { server, port } = await harness.listen({ tls: { key: certs.server.key, cert: certs.server.cert } });
    const seen = observe(server);
    const attacker = await RawPeer.connect(port, { tls: { ca: certs.ca.cert, servername: 'localhost', maxVersion: 'TLSv1.2' } });
    const { completed } = await renegotiationFlood(attacker);
    await attacker.closedByServer(WAIT_MS).catch(() => undefined);
    expect({ completed, closed: attacker.closed }).toEqual({ completed: 0, closed: true });
    expect(attacker.received().length).toBe(0);
    const good = await GoodClient.open(`wss://localhost:${port}/`, { ca: certs.ca.cert });
    await good.exchange(10);
    expect(good.intact).toBe(true);
    expect(seen.errors).toEqual([]);
  });
});
