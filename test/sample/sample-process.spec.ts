/**
 * `SAMPLE_PLATFORM=fastify npm start` as a process: the sample on Fastify, its gateway served by the adapter that
 * WebSocketsModule installs (main.ts calls no useWebSocketAdapter), its metrics in the Prometheus text format at
 * GET /metrics on a port of their own, and SIGTERM logging one line for the connections it closed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestClient } from '../../lib/testing/index.js';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { freePort } from '../support/net.js';
import { SAMPLE_BUILD_TIMEOUT_MS, SampleApp } from '../support/sample-process.js';

let sample: SampleApp | undefined;

beforeAll(async () => {
  sample = await SampleApp.build();
}, SAMPLE_BUILD_TIMEOUT_MS + 10_000);

afterAll(async () => {
  await sample?.dispose();
});

/** The value of the sample of `name` whose labels include `labels`, in Prometheus text. */
function sampleValue(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}{`) && candidate.includes(labels));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('the sample process', () => {
  it('runs on Fastify with SAMPLE_PLATFORM=fastify, serves GET /metrics, and logs its shutdown in one line', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const child = await sample!.start(port, { SAMPLE_PLATFORM: 'fastify', SAMPLE_METRICS_PORT: String(metricsPort) });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
    expect(await client.request('echo', 'over fastify')).toBe('over fastify');
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);

    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const gateway = 'websocket_gateway="ChatGateway"';
    expect(sampleValue(text, 'websocket_server_active_connections', gateway)).toBe(1);
    expect(sampleValue(text, 'websocket_server_messages_received_total', gateway)).toBe(1);
    expect(sampleValue(text, 'websocket_server_handshakes_total', 'websocket_handshake_outcome="accepted"')).toBe(1);
    expect(sampleValue(text, 'websocket_server_handler_duration_count', 'websocket_event="echo"')).toBe(1);

    await sample!.stop(child);
    await client.expectClose(CloseCode.GOING_AWAY);
    expect(output).toMatch(/Gateway ChatGateway: shutdown closed 1 connection\(s\) with 1001 in \d+ ms: 1 answered the close, 0 cut after closeTimeoutMs/);
    // Nothing per connection by default.
    expect(output).not.toContain('connection from');
  });
});
