/**
 * A bearer token offered in `Sec-WebSocket-Protocol` (how browsers send credentials without the URL), over real
 * sockets: the hook and `ws.request` see `Authorization: Bearer <token>` and no trace of it among the subprotocols;
 * it is never negotiated or echoed, whatever else is offered (the marker is the answer when the server chooses
 * nothing else), and an Authorization header the client sent wins.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import WsLibrary from 'ws';
import type { HandshakeInfo } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { AUTH_MARKER_SUBPROTOCOL, bearerSubprotocol } from '../../lib/protocol/bearer-subprotocol.js';
import { rawConnect } from '../support/net.js';
import { Harness, next, WAIT_MS } from './harness.js';

const harness = new Harness();
afterEach(() => harness.cleanup());

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
const OFFER = [AUTH_MARKER_SUBPROTOCOL, bearerSubprotocol(TOKEN)];

describe('credentials in Sec-WebSocket-Protocol', () => {
  it('reach the hook and ws.request as Authorization: Bearer, and are not negotiated', async () => {
    const seen: HandshakeInfo[] = [];
    const { server, url } = await harness.listen({ subprotocols: ['chat'], handshake: (info) => void seen.push(info) });
    const connected = next<[WebSocket]>(server, 'connection');
    const client = await harness.connect(`${url}/`, { protocols: ['chat', ...OFFER] });
    const [ws] = await connected;
    expect(client.protocol).toBe('chat');
    expect(ws.protocol).toBe('chat');
    expect(seen[0]!.headers.get('authorization')).toBe(`Bearer ${TOKEN}`);
    expect(seen[0]!.headers.getAll('sec-websocket-protocol')).toEqual([`chat, ${AUTH_MARKER_SUBPROTOCOL}`]);
    expect(ws.request?.headers.get('authorization')).toBe(`Bearer ${TOKEN}`);
    expect(JSON.stringify(ws.request?.rawHeaders)).not.toContain(OFFER[1]);

    // Offered alone: the server chooses none of its own and answers with the marker, as browsers (and ws) require.
    const bare = await harness.connect(`${url}/`, { protocols: OFFER });
    expect(bare.protocol).toBe(AUTH_MARKER_SUBPROTOCOL);
    const library = new WsLibrary(`${url}/`, OFFER);
    try {
      await next(library, 'open');
      expect(library.protocol).toBe(AUTH_MARKER_SUBPROTOCOL);
    } finally {
      library.terminate();
    }
  });

  it('never echoes the token in the response', async () => {
    const { port } = await harness.listen({ subprotocols: ['chat'] });
    const raw = await rawConnect(port);
    await raw.write(
      'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${OFFER.join(', ')}\r\n\r\n`,
    );
    const head = (await raw.readUntil((bytes) => bytes.includes('\r\n\r\n'), WAIT_MS, 'the 101')).toString('latin1');
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head).toContain(`\r\nSec-WebSocket-Protocol: ${AUTH_MARKER_SUBPROTOCOL}\r\n`);
    expect(head).not.toContain('nestjs-websockets.bearer');
  });

  it('leave an Authorization header that the client sent itself', async () => {
    const seen: HandshakeInfo[] = [];
    const { url } = await harness.listen({ handshake: (info) => void seen.push(info) });
    await harness.connect(`${url}/`, { protocols: OFFER, headers: { Authorization: 'Bearer from-header' } });
    expect(seen[0]!.headers.getAll('authorization')).toEqual(['Bearer from-header']);
  });
});
