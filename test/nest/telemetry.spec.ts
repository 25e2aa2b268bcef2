/**
 * OpenTelemetry over real sockets: a known sequence of traffic, then every metric read back through an in-memory
 * reader (exact counts and bytes) and every span through an in-memory exporter (names, attributes, the client's
 * trace context as parent, the handshake's as a link). The SDK is registered before the app starts, as an app does.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { DataPointType, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { AddressInfo } from 'node:net';
import { ATTRIBUTES, METRIC_NAMES } from '../../lib/nest/telemetry/websockets-telemetry.js';
import { WebSocketsAdapter } from '../../lib/nest/index.js';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { TelemetryAppModule } from './fixtures/telemetry-app.js';
import { closePeers, connectPeer, refusal, type Peer } from './ws-peer.js';

/** A reader that collects when asked. */
class TestReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

const reader = new TestReader();
const spans = new InMemorySpanExporter();
const meterProvider = new MeterProvider({ readers: [reader] });
const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] });
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_SPAN_ID = 'b7ad6b7169203331';
const HANDSHAKE_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
let app: INestApplication;
let port: number;

beforeAll(async () => {
  metrics.setGlobalMeterProvider(meterProvider);
  trace.setGlobalTracerProvider(tracerProvider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const moduleRef = await Test.createTestingModule({ imports: [TelemetryAppModule] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  app.useWebSocketAdapter(new WebSocketsAdapter(app));
  await app.listen(0, '127.0.0.1');
  port = (app.getHttpServer().address() as AddressInfo).port;
});

afterAll(async () => {
  await closePeers();
  await app.close();
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
  metrics.disable();
  trace.disable();
  context.disable();
  propagation.disable();
});

/** The metrics collected now, by name. */
async function collect(): Promise<Map<string, MetricData>> {
  const { resourceMetrics } = await reader.collect();
  const byName = new Map<string, MetricData>();
  for (const scope of resourceMetrics.scopeMetrics) for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
  return byName;
}

/** `value` of each data point as `attributes => value`, for sums and gauges; `count`/`sum` for histograms. */
function points(metric: MetricData | undefined): Array<{ attributes: Record<string, unknown>; value: unknown }> {
  if (metric === undefined) return [];
  return (metric.dataPoints as Array<{ attributes: Record<string, unknown>; value: unknown }>).map(({ attributes, value }) => ({
    attributes: { ...attributes },
    value: metric.dataPointType === DataPointType.HISTOGRAM ? { count: (value as { count: number }).count, sum: (value as { sum: number }).sum } : value,
  }));
}

const gateway = { [ATTRIBUTES.gateway]: 'TelemetryGateway' };

describe('OpenTelemetry instrumentation', () => {
  let alice: Peer;
  let bob: Peer;
  const sentText: string[] = [];
  const received: Buffer[] = [];

  it('counts a known sequence of traffic exactly', async () => {
    const url = `ws://127.0.0.1:${port}/otel`;
    expect((await refusal(`${url}?deny=1`)).status).toBe(403);
    alice = await connectPeer(url);
    bob = await connectPeer(url, { headers: { traceparent: `00-${HANDSHAKE_TRACE_ID}-00f067aa0ba902b7-01` } });
    const send = (peer: Peer, message: object): void => {
      const text = JSON.stringify(message);
      sentText.push(text);
      peer.ws.send(text);
    };
    const next = async (peer: Peer): Promise<unknown> => {
      const { data } = await peer.nextRaw();
      received.push(data);
      return JSON.parse(data.toString()) as unknown;
    };
    send(alice, { event: 'echo', data: 'hi', id: 1, traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01` });
    expect(await next(alice)).toEqual({ event: 'echo', data: 'hi', id: 1 });
    send(alice, { event: 'fail', data: null, id: 2 });
    expect(await next(alice)).toMatchObject({ event: 'exception', id: 2 });
    send(bob, { event: 'shout', data: 'hey' });
    expect(await next(alice)).toEqual({ event: 'shout', data: 'hey' });
    expect(await next(bob)).toEqual({ event: 'shout', data: 'hey' });

    const open = await collect();
    expect(points(open.get(METRIC_NAMES.activeConnections))).toEqual([{ attributes: gateway, value: 2 }]);
    expect(points(open.get(METRIC_NAMES.handshakes))).toEqual([
      { attributes: { ...gateway, [ATTRIBUTES.handshakeOutcome]: 'refused', [ATTRIBUTES.statusCode]: 403, [ATTRIBUTES.errorType]: 'WS_ERR_HANDSHAKE' }, value: 1 },
      { attributes: { ...gateway, [ATTRIBUTES.handshakeOutcome]: 'accepted', [ATTRIBUTES.statusCode]: 101 }, value: 2 },
    ]);
    expect(points(open.get(METRIC_NAMES.messagesReceived))).toEqual([{ attributes: gateway, value: 3 }]);
    expect(points(open.get(METRIC_NAMES.bytesReceived))).toEqual([{ attributes: gateway, value: sentText.reduce((sum, text) => sum + Buffer.byteLength(text), 0) }]);
    expect(points(open.get(METRIC_NAMES.messagesSent))).toEqual([{ attributes: gateway, value: 4 }]);
    expect(points(open.get(METRIC_NAMES.bytesSent))).toEqual([{ attributes: gateway, value: received.reduce((sum, data) => sum + data.length, 0) }]);
    expect(points(open.get(METRIC_NAMES.handlerDuration)).map(({ attributes, value }) => ({ attributes, count: (value as { count: number }).count }))).toEqual([
      { attributes: { ...gateway, [ATTRIBUTES.event]: 'echo', [ATTRIBUTES.outcome]: 'ok' }, count: 1 },
      { attributes: { ...gateway, [ATTRIBUTES.event]: 'fail', [ATTRIBUTES.outcome]: 'error' }, count: 1 },
      { attributes: { ...gateway, [ATTRIBUTES.event]: 'shout', [ATTRIBUTES.outcome]: 'ok' }, count: 1 },
    ]);
    expect(points(open.get(METRIC_NAMES.broadcastRecipients))).toEqual([
      { attributes: { ...gateway, [ATTRIBUTES.broadcastSource]: 'local' }, value: { count: 1, sum: 2 } },
    ]);
    expect(points(open.get(METRIC_NAMES.sendBuffer))).toEqual([
      { attributes: { [ATTRIBUTES.gateway]: 'DroppingGateway' }, value: 0 },
      { attributes: gateway, value: 0 },
    ]);

    alice.ws.close(CloseCode.NORMAL_CLOSURE);
    await alice.closed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = await collect();
    expect(points(closed.get(METRIC_NAMES.activeConnections))).toEqual([{ attributes: gateway, value: 1 }]);
    expect(points(closed.get(METRIC_NAMES.closes))).toEqual([
      { attributes: { ...gateway, [ATTRIBUTES.closeCode]: 1000, [ATTRIBUTES.closeDirection]: 'sent' }, value: 1 },
      { attributes: { ...gateway, [ATTRIBUTES.closeCode]: 1000, [ATTRIBUTES.closeDirection]: 'received' }, value: 1 },
    ]);
    expect(points(closed.get(METRIC_NAMES.connectionDuration)).map(({ value }) => (value as { count: number }).count)).toEqual([1]);
  });

  it('counts slow consumers: one closed with 1013, and each message dropped under the drop policy', async () => {
    const closing = await connectPeer(`ws://127.0.0.1:${port}/otel`);
    const dropping = await connectPeer(`ws://127.0.0.1:${port}/otel-drop`);
    // Neither reads: the gateways flood them until the policy applies.
    closing.ws.pause();
    dropping.ws.pause();
    closing.send({ event: 'flood', data: null });
    dropping.send({ event: 'flood', data: null, id: 9 });
    // The server closes the first with 1013 and cuts it within closeTimeoutMs (500 ms here), when it is counted.
    const deadline = Date.now() + 5000;
    const closedSlow = async (): Promise<boolean> =>
      points((await collect()).get(METRIC_NAMES.slowConsumer)).some(({ attributes }) => attributes[ATTRIBUTES.slowConsumerAction] === 'close');
    while (!(await closedSlow()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    closing.ws.resume();
    dropping.ws.resume();
    await closing.closed;
    // The chunks that were sent come first, then the reply with the number dropped.
    let reply: { id?: number; data?: unknown } = {};
    while (reply.id !== 9) {
      const { data } = await dropping.nextRaw();
      if (data[0] === 0x7b) reply = JSON.parse(data.toString()) as typeof reply;
    }
    const dropped = reply.data as number;
    expect(dropped).toBe(10);
    const collected = await collect();
    const slow = points(collected.get(METRIC_NAMES.slowConsumer));
    expect(slow).toHaveLength(2);
    expect(slow).toContainEqual({ attributes: { ...gateway, [ATTRIBUTES.slowConsumerAction]: 'close' }, value: 1 });
    expect(slow).toContainEqual({ attributes: { [ATTRIBUTES.gateway]: 'DroppingGateway', [ATTRIBUTES.slowConsumerAction]: 'drop' }, value: dropped });
    expect(points(collected.get(METRIC_NAMES.closes))).toContainEqual({ attributes: { ...gateway, [ATTRIBUTES.closeCode]: 1013, [ATTRIBUTES.closeDirection]: 'sent' }, value: 1 });
    dropping.ws.close();
    await dropping.closed;
  });

  it('makes a span per handled message, a child of the trace context it carries, linked to the handshake', async () => {
    const finished = spans.getFinishedSpans();
    expect(finished.map((span) => span.name).sort()).toEqual([
      'DroppingGateway flood',
      'TelemetryGateway echo',
      'TelemetryGateway fail',
      'TelemetryGateway flood',
      'TelemetryGateway handshake',
      'TelemetryGateway shout',
    ]);
    const echo = finished.find((span) => span.name === 'TelemetryGateway echo')!;
    expect(echo.spanContext().traceId).toBe(TRACE_ID);
    expect(echo.parentSpanContext?.spanId).toBe(PARENT_SPAN_ID);
    expect(echo.attributes).toMatchObject({
      [ATTRIBUTES.gateway]: 'TelemetryGateway',
      [ATTRIBUTES.event]: 'echo',
      [ATTRIBUTES.messageSize]: Buffer.byteLength(sentText[0]!),
      [ATTRIBUTES.messageId]: '1',
      [ATTRIBUTES.outcome]: 'ok',
      [ATTRIBUTES.clientAddress]: '127.0.0.1',
    });
    expect(echo.attributes[ATTRIBUTES.clientId]).toMatch(/^[\w-]{22}$/);
    const fail = finished.find((span) => span.name === 'TelemetryGateway fail')!;
    expect(fail.attributes[ATTRIBUTES.outcome]).toBe('error');
    expect(fail.status.code).toBe(2);
    expect(fail.parentSpanContext).toBeUndefined();
    const shout = finished.find((span) => span.name === 'TelemetryGateway shout')!;
    expect(shout.links.map((link) => link.context.traceId)).toEqual([HANDSHAKE_TRACE_ID]);
    const handshake = finished.find((span) => span.name === 'TelemetryGateway handshake')!;
    expect(handshake.attributes).toMatchObject({ [ATTRIBUTES.statusCode]: 403, [ATTRIBUTES.handshakeOutcome]: 'refused', [ATTRIBUTES.urlPath]: '/otel' });
    expect(handshake.status.code).toBe(2);
  });
});
