/**
 * Interop with Python websockets (Debian's python3-websockets under /usr/bin/python3), an independent
 * implementation: its client against our server, and our client against its server, with and without compression.
 */
import { afterEach, expect, it } from '@jest/globals';
import type { WebSocket } from '../../lib/node/websocket.js';
import { describeWithPeer } from '../support/peers.js';
import { runPythonClient, startPythonEchoServer, type PythonEchoServer } from '../support/python.js';
import { Harness, next } from './harness.js';

const harness = new Harness();
const pythonServers: PythonEchoServer[] = [];
afterEach(async () => {
  await Promise.all(pythonServers.splice(0).map((server) => server.stop()));
  await harness.cleanup();
});

/** 32 KiB of varied bytes: big enough for several TCP reads, small enough for a command-line argument. */
const BINARY = Buffer.from(Array.from({ length: 32 * 1024 }, (_, i) => (i * 131) & 0xff));

describeWithPeer('python', 'Python websockets', () => {
  it.each([true, false])('its client talks to our server (compression %s) and closes with a code we see', async (compression) => {
    const { server, url } = await harness.listen({ subprotocols: ['chat'] });
    const closes: Array<[number, string]> = [];
    const extensions: string[] = [];
    server.on('connection', (ws: WebSocket) => {
      extensions.push(ws.extensions);
      ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }));
      ws.on('close', (code: number, reason: string) => closes.push([code, reason]));
    });
    const { events, result } = await runPythonClient(`${url}/py?x=1`, {
      messages: ['héllo from python', BINARY],
      compression,
      subprotocols: ['chat'],
      closeCode: 4100,
      closeReason: 'python done',
    });
    expect(result.stderr).toBe('');
    expect(events[0]).toMatchObject({ event: 'open', subprotocol: 'chat' });
    expect(events.slice(1)).toEqual([
      { event: 'message', type: 'text', data: 'héllo from python' },
      { event: 'message', type: 'binary', hex: BINARY.toString('hex') },
      { event: 'closed', code: 4100, reason: 'python done' },
    ]);
    expect(extensions[0] !== '').toBe(compression);
    expect(closes).toEqual([[4100, 'python done']]);
  }, 20_000);

  it.each([true, false])('our client talks to its server (compression %s)', async (compression) => {
    const python = await startPythonEchoServer({ compression: true });
    pythonServers.push(python);
    const ws = await harness.connect(`ws://127.0.0.1:${python.port}/`, { compression });
    expect(ws.extensions !== '').toBe(compression);
    const replies: Array<string | Buffer> = [];
    ws.on('message', (data: string | Buffer) => replies.push(data));
    await ws.send('héllo from node');
    await ws.send(Buffer.alloc(1024 * 1024, 7));
    await ws.send(BINARY);
    await new Promise<void>((resolve) => {
      const check = (): void => (replies.length === 3 ? resolve() : void setTimeout(check, 5));
      check();
    });
    expect(replies[0]).toBe('héllo from node');
    expect((replies[1] as Buffer).equals(Buffer.alloc(1024 * 1024, 7))).toBe(true);
    expect((replies[2] as Buffer).equals(BINARY)).toBe(true);
    expect(await ws.ping()).toBeGreaterThan(0);
    const closed = next<[number, string]>(ws, 'close');
    await ws.close(1000, 'node done');
    expect(await closed).toEqual([1000, 'node done']);
  }, 20_000);
});
