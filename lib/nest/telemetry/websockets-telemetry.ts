/**
 * OpenTelemetry for gateways: metrics and spans through `@opentelemetry/api` (an optional peer; see
 * opentelemetry-api.ts). `create()` returns `null`, and the adapter then adds nothing anywhere (not a branch per
 * message), unless the API is installed and the app registered a meter provider or a tracer provider before the
 * first gateway server was created (`app.init()` / `app.listen()`).
 *
 * Names follow the OpenTelemetry conventions where they exist (`http.response.status_code`, `error.type`,
 * `client.address`, `server.port`, units `s`, `By`, `{connection}`); WebSocket metrics have no convention yet, so
 * they are `websocket.server.*`, in the style of `http.server.*`. Every name is listed in docs/how-to/operations.md,
 * and `METRIC_NAMES` / `ATTRIBUTES` here are what a test reads back.
 */
import type { Attributes, Context, Counter, Histogram, Link, Meter, ObservableResult, Span, Tracer, UpDownCounter } from '@opentelemetry/api';
import { PACKAGE_VERSION } from '../../config/settings.js';
import { SlowConsumerError, type HandshakeError } from '../../errors.js';
import type { HandshakeInfo } from '../../node/server.js';
import type { WebSocket } from '../../node/websocket.js';
import type { HandshakeHeaders } from '../../protocol/handshake-headers.js';
import type { PreparedMessage } from '../../protocol/prepared-message.js';
import type { WebSocketsGatewayServer } from '../gateway-server.js';
import { openTelemetryApi, type OpenTelemetry } from './opentelemetry-api.js';

/** The instrumentation scope: the meter's and the tracer's name. */
export const INSTRUMENTATION_SCOPE = 'nestjs-websockets';

/** Every metric, by what it measures. */
export const METRIC_NAMES = Object.freeze({
  activeConnections: 'websocket.server.active_connections',
  connectionDuration: 'websocket.server.connection.duration',
  handshakes: 'websocket.server.handshakes',
  messagesReceived: 'websocket.server.messages.received',
  messagesSent: 'websocket.server.messages.sent',
  bytesReceived: 'websocket.server.bytes.received',
  bytesSent: 'websocket.server.bytes.sent',
  closes: 'websocket.server.closes',
  slowConsumer: 'websocket.server.slow_consumer',
  sendBuffer: 'websocket.server.send_buffer.size',
  handlerDuration: 'websocket.server.handler.duration',
  broadcastRecipients: 'websocket.server.broadcast.recipients',
  busLag: 'websocket.server.bus.lag',
});

/** Every attribute name the instrumentation sets. */
export const ATTRIBUTES = Object.freeze({
  gateway: 'websocket.gateway',
  event: 'websocket.event',
  clientId: 'websocket.client.id',
  messageSize: 'websocket.message.size',
  messageId: 'websocket.message.id',
  messageType: 'websocket.message.type',
  outcome: 'websocket.handler.outcome',
  handshakeOutcome: 'websocket.handshake.outcome',
  closeCode: 'websocket.close.code',
  closeDirection: 'websocket.close.direction',
  slowConsumerAction: 'websocket.slow_consumer.action',
  broadcastSource: 'websocket.broadcast.source',
  bus: 'websocket.bus',
  statusCode: 'http.response.status_code',
  errorType: 'error.type',
  clientAddress: 'client.address',
  serverPort: 'server.port',
  urlPath: 'url.path',
});

/** What an instrumented connection counts of its exception frames (see `GatewayWebSocket.exceptionsSent`). */
interface CountsExceptions {
  readonly exceptionsSent?: number;
}

/** What a message carries of the W3C trace context (`traceparent`, `tracestate` at its top level). */
export interface MessageTraceContext {
  readonly traceparent?: string;
  readonly tracestate?: string;
}

const ms = (value: number): number => value / 1000;

export class WebSocketsTelemetry {
  /** Whether a meter provider is registered: connection, message and handler metrics are recorded. */
  readonly metrics: boolean;
  /** Whether a tracer provider is registered: a span per handled message and per refused handshake. */
  readonly traces: boolean;
  readonly #api: OpenTelemetry;
  readonly #tracer: Tracer | undefined;
  readonly #attributes = new Map<string, Attributes>();
  readonly #handlerAttributeCache = new Map<string, Map<string, readonly [Attributes, Attributes]>>();
  readonly #observed = new Map<WebSocketsGatewayServer, Attributes>();
  readonly #busLag = new Map<string, number>();
  readonly #connections: UpDownCounter | undefined;
  readonly #connectionDuration: Histogram | undefined;
  readonly #handshakes: Counter | undefined;
  /** Message and byte counts per gateway: plain numbers on the hot path, read by observable counters at collection. */
  readonly #traffic = new Map<string, TrafficCounts>();
  readonly #closes: Counter | undefined;
  readonly #slowConsumer: Counter | undefined;
  readonly #handlerDuration: Histogram | undefined;
  readonly #broadcastRecipients: Histogram | undefined;

  /** The telemetry of an app, or `null` when there is nothing to record to (no API, or no provider registered). */
  static create(): WebSocketsTelemetry | null {
    const api = openTelemetryApi();
    if (api === null) return null;
    const meter = api.metrics.getMeter(INSTRUMENTATION_SCOPE, PACKAGE_VERSION);
    const tracer = api.trace.getTracer(INSTRUMENTATION_SCOPE, PACKAGE_VERSION);
    // Without a provider, the API hands out its no-op meter, and a proxy tracer that has nothing to delegate to.
    const metrics = meter !== api.createNoopMeter();
    const traces = !(tracer instanceof api.ProxyTracer);
    if (!metrics && !traces) return null;
    return new WebSocketsTelemetry(api, metrics ? meter : undefined, traces ? tracer : undefined);
  }

  private constructor(api: OpenTelemetry, meter: Meter | undefined, tracer: Tracer | undefined) {
    this.#api = api;
    this.metrics = meter !== undefined;
    this.traces = tracer !== undefined;
    this.#tracer = tracer;
    if (meter === undefined) return;
    // OpenTelemetry's HTTP duration buckets (seconds), and longer ones for connections (1 s to a day).
    const seconds = { unit: 's', advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] } };
    const connectionSeconds = { unit: 's', advice: { explicitBucketBoundaries: [1, 10, 60, 300, 900, 1800, 3600, 14_400, 86_400] } };
    this.#connections = meter.createUpDownCounter(METRIC_NAMES.activeConnections, { unit: '{connection}', description: 'Open WebSocket connections.' });
    this.#connectionDuration = meter.createHistogram(METRIC_NAMES.connectionDuration, { ...connectionSeconds, description: 'How long connections stayed open.' });
    this.#handshakes = meter.createCounter(METRIC_NAMES.handshakes, { unit: '{handshake}', description: 'Opening handshakes, by outcome and HTTP status.' });
    // A Counter's add() hashes its attributes on every call: per message (and per recipient of a broadcast) that
    // cost more than the send. These are counted in plain numbers and observed when the reader collects.
    const traffic = (name: string, unit: string, description: string, field: keyof Omit<TrafficCounts, 'attributes'>): void => {
      meter.createObservableCounter(name, { unit, description }).addCallback((result) => {
        for (const counts of this.#traffic.values()) result.observe(counts[field], counts.attributes);
      });
    };
    traffic(METRIC_NAMES.messagesReceived, '{message}', 'Messages received from clients.', 'messagesReceived');
    traffic(METRIC_NAMES.bytesReceived, 'By', 'Payload bytes of the messages received.', 'bytesReceived');
    traffic(METRIC_NAMES.messagesSent, '{message}', 'Messages handed to send() (replies, sends, broadcasts).', 'messagesSent');
    traffic(METRIC_NAMES.bytesSent, 'By', 'Payload bytes of the messages handed to send().', 'bytesSent');
    this.#closes = meter.createCounter(METRIC_NAMES.closes, { unit: '{close}', description: 'Close frames sent and received, by code.' });
    this.#slowConsumer = meter.createCounter(METRIC_NAMES.slowConsumer, { unit: '{event}', description: 'Slow consumers closed (1013), and messages dropped.' });
    this.#handlerDuration = meter.createHistogram(METRIC_NAMES.handlerDuration, { ...seconds, description: 'Time from a message to the end of its handler.' });
    this.#broadcastRecipients = meter.createHistogram(METRIC_NAMES.broadcastRecipients, {
      unit: '{connection}',
      description: 'Clients of this instance one broadcast was handed to.',
      advice: { explicitBucketBoundaries: [0, 1, 10, 100, 1000, 10_000, 100_000] },
    });
    meter
      .createObservableUpDownCounter(METRIC_NAMES.sendBuffer, { unit: 'By', description: 'Bytes waiting to be sent, over every connection.' })
      .addCallback((result) => this.#observeSendBuffers(result));
    meter
      .createObservableGauge(METRIC_NAMES.busLag, { unit: 's', description: 'Round trip to the broadcast bus (Redis PING) at its last check.' })
      .addCallback((result) => {
        for (const [bus, lagMs] of this.#busLag) result.observe(ms(lagMs), { [ATTRIBUTES.bus]: bus });
      });
  }

  /** The attributes of a gateway's measurements (one frozen object per gateway, shared). */
  attributesOf(gateway: string): Attributes {
    let attributes = this.#attributes.get(gateway);
    if (attributes === undefined) {
      attributes = Object.freeze({ [ATTRIBUTES.gateway]: gateway });
      this.#attributes.set(gateway, attributes);
    }
    return attributes;
  }

  /** The message and byte counts of a gateway (one object per gateway, shared by its connections). */
  trafficOf(gateway: string): TrafficCounts {
    let counts = this.#traffic.get(gateway);
    if (counts === undefined) {
      counts = { attributes: this.attributesOf(gateway), messagesReceived: 0, bytesReceived: 0, messagesSent: 0, bytesSent: 0 };
      this.#traffic.set(gateway, counts);
    }
    return counts;
  }

  /** Starts counting a server's connections (the adapter calls it once per server). */
  observe(server: WebSocketsGatewayServer, gateway: string): void {
    const attributes = this.attributesOf(gateway);
    this.#observed.set(server, attributes);
    if (!this.metrics) return;
    const accepted = Object.freeze({ ...attributes, [ATTRIBUTES.handshakeOutcome]: 'accepted', [ATTRIBUTES.statusCode]: 101 });
    server.webSocketServer.on('connection', (client: WebSocket) => {
      const opened = performance.now();
      (client as WebSocket & { telemetry?: ClientTelemetry }).telemetry = { telemetry: this, traffic: this.trafficOf(gateway) };
      this.#handshakes!.add(1, accepted);
      this.#connections!.add(1, attributes);
      client.on('drop', () => this.#slowConsumer!.add(1, { ...attributes, [ATTRIBUTES.slowConsumerAction]: 'drop' }));
      client.on('close', () => {
        this.#connections!.add(-1, attributes);
        this.#connectionDuration!.record(ms(performance.now() - opened), attributes);
        const sent = client.closeSent;
        const received = client.closeReceived;
        if (sent !== null) this.#closes!.add(1, { ...attributes, [ATTRIBUTES.closeCode]: sent.code, [ATTRIBUTES.closeDirection]: 'sent' });
        if (received !== null) this.#closes!.add(1, { ...attributes, [ATTRIBUTES.closeCode]: received.code, [ATTRIBUTES.closeDirection]: 'received' });
        if (sent === null && received === null) this.#closes!.add(1, { ...attributes, [ATTRIBUTES.closeCode]: 1006, [ATTRIBUTES.closeDirection]: 'none' });
        if (sent !== null && sent.code === SLOW_CONSUMER_CODE && sent.reason.startsWith(SLOW_CONSUMER_REASON)) {
          this.#slowConsumer!.add(1, { ...attributes, [ATTRIBUTES.slowConsumerAction]: 'close' });
        }
      });
    });
  }

  /** Stops observing a closed server. */
  unobserve(server: WebSocketsGatewayServer): void {
    this.#observed.delete(server);
  }

  /** A refused handshake: counted by status, and a span. */
  handshakeRefused(gateway: string, error: HandshakeError, info: HandshakeInfo | undefined): void {
    const attributes = this.attributesOf(gateway);
    const errorType = (error as { code?: unknown }).code;
    const refused = {
      ...attributes,
      [ATTRIBUTES.handshakeOutcome]: 'refused',
      [ATTRIBUTES.statusCode]: error.httpStatus,
      [ATTRIBUTES.errorType]: typeof errorType === 'string' ? errorType : error.name,
    };
    this.#handshakes?.add(1, refused);
    if (this.#tracer === undefined) return;
    const api = this.#api;
    const headers = info?.request.headers;
    const parent = headers === undefined ? api.ROOT_CONTEXT : api.propagation.extract(api.ROOT_CONTEXT, headerCarrier(headers));
    const span = this.#tracer.startSpan(
      `${gateway} handshake`,
      {
        kind: api.SpanKind.SERVER,
        attributes: {
          ...refused,
          ...(info?.remoteAddress === undefined ? {} : { [ATTRIBUTES.clientAddress]: info.remoteAddress }),
          ...(info === undefined ? {} : { [ATTRIBUTES.urlPath]: info.request.path.split('?')[0] }),
        },
      },
      parent,
    );
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: error.message });
    span.end();
  }

  /** A message received by a gateway's client. */
  messageReceived(traffic: TrafficCounts, raw: string | Buffer): void {
    if (!this.metrics) return;
    traffic.messagesReceived++;
    traffic.bytesReceived += typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
  }

  /** A message handed to `send()`. */
  messageSent(traffic: TrafficCounts, data: unknown): void {
    if (!this.metrics) return;
    traffic.messagesSent++;
    traffic.bytesSent += sizeOf(data);
  }

  /**
   * Runs one handler of a message in its span (`<gateway> <event>`, a child of the message's `traceparent` when it
   * has one, linked to the handshake's), and records its duration and outcome.
   */
  handle(
    gateway: string,
    event: string,
    client: WebSocket,
    raw: string | Buffer,
    trace: MessageTraceContext | undefined,
    id: string | number | undefined,
    run: () => Promise<boolean>,
  ): Promise<void> {
    const started = performance.now();
    const api = this.#api;
    let span: Span | undefined;
    let context: Context | undefined;
    if (this.#tracer !== undefined) {
      const parent = trace?.traceparent === undefined ? api.ROOT_CONTEXT : api.propagation.extract(api.ROOT_CONTEXT, trace);
      const links: Link[] = [];
      const headers = client.request?.headers;
      if (headers !== undefined && headers.has('traceparent')) {
        const linked = api.trace.getSpanContext(api.propagation.extract(api.ROOT_CONTEXT, headerCarrier(headers)));
        if (linked !== undefined) links.push({ context: linked });
      }
      span = this.#tracer.startSpan(
        `${gateway} ${event}`,
        {
          kind: api.SpanKind.SERVER,
          links,
          attributes: {
            [ATTRIBUTES.gateway]: gateway,
            [ATTRIBUTES.event]: event,
            [ATTRIBUTES.clientId]: client.id,
            [ATTRIBUTES.messageSize]: typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length,
            ...(id === undefined ? {} : { [ATTRIBUTES.messageId]: String(id) }),
            ...(client.remoteAddress === undefined ? {} : { [ATTRIBUTES.clientAddress]: client.remoteAddress }),
          },
        },
        parent,
      );
      context = api.trace.setSpan(parent, span);
    }
    // An exception frame sent to the client while the handler runs (Nest's filter answering what it threw) makes
    // the outcome an error. Counted per connection rather than tracked with an AsyncLocalStorage, which would make
    // every promise of the process pay for async hooks: with several messages of one client in flight, a frame is
    // charged to each handler that was running when it was sent.
    const exceptionsBefore = (client as CountsExceptions).exceptionsSent ?? 0;
    const finish = (failed: boolean): void => {
      const outcome = failed || ((client as CountsExceptions).exceptionsSent ?? 0) !== exceptionsBefore ? 'error' : 'ok';
      this.#handlerDuration?.record(ms(performance.now() - started), this.#handlerAttributes(gateway, event, outcome));
      if (span !== undefined) {
        span.setAttribute(ATTRIBUTES.outcome, outcome);
        if (outcome === 'error') span.setStatus({ code: api.SpanStatusCode.ERROR });
        span.end();
      }
    };
    // Without traces there is no span to make current.
    const running = context === undefined ? run() : api.context.with(context, run);
    return running.then(
      (failed) => finish(failed),
      (error: unknown) => {
        finish(true);
        throw error;
      },
    );
  }

  /** The attributes of a handler's duration, one frozen object per gateway, event and outcome (no string built per message). */
  #handlerAttributes(gateway: string, event: string, outcome: 'ok' | 'error'): Attributes {
    let events = this.#handlerAttributeCache.get(gateway);
    if (events === undefined) this.#handlerAttributeCache.set(gateway, (events = new Map()));
    let pair = events.get(event);
    if (pair === undefined) {
      const make = (value: string): Attributes => Object.freeze({ [ATTRIBUTES.gateway]: gateway, [ATTRIBUTES.event]: event, [ATTRIBUTES.outcome]: value });
      pair = [make('ok'), make('error')];
      events.set(event, pair);
    }
    return outcome === 'ok' ? pair[0] : pair[1];
  }

  /** The hook a gateway server calls after each broadcast with the clients it reached. */
  broadcastDelivered(gateway: string): (recipients: number, remote: boolean) => void {
    const attributes = this.attributesOf(gateway);
    const local = Object.freeze({ ...attributes, [ATTRIBUTES.broadcastSource]: 'local' });
    const remote = Object.freeze({ ...attributes, [ATTRIBUTES.broadcastSource]: 'remote' });
    return (recipients, fromBus) => this.#broadcastRecipients!.record(recipients, fromBus ? remote : local);
  }

  /** The round trip to the broadcast bus, measured by a health check. */
  busLag(bus: string, lagMs: number): void {
    this.#busLag.set(bus, lagMs);
  }

  #observeSendBuffers(result: ObservableResult): void {
    for (const [server, attributes] of this.#observed) {
      let bytes = 0;
      for (const client of server.clients) bytes += client.bufferedAmount;
      result.observe(bytes, attributes);
    }
  }
}

/** What a connection of an instrumented server carries: where to count its sends. */
export interface ClientTelemetry {
  readonly telemetry: WebSocketsTelemetry;
  readonly traffic: TrafficCounts;
}

/** Messages and bytes of one gateway, both ways. */
export interface TrafficCounts {
  readonly attributes: Attributes;
  messagesReceived: number;
  bytesReceived: number;
  messagesSent: number;
  bytesSent: number;
}

const SLOW_CONSUMER_CODE = new SlowConsumerError(0).closeCode;
const SLOW_CONSUMER_REASON = SlowConsumerError.reason(0).split(' ')[0]!;

/** Payload bytes of what `send()` takes. */
function sizeOf(data: unknown): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (Buffer.isBuffer(data)) return data.length;
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  const prepared = data as PreparedMessage | undefined;
  return prepared?.payload?.length ?? 0;
}

/** The W3C trace headers of a handshake request, as a carrier for `propagation.extract()`. */
function headerCarrier(headers: HandshakeHeaders): Record<string, string> {
  const carrier: Record<string, string> = {};
  for (const name of ['traceparent', 'tracestate']) {
    const values = headers.getAll(name);
    if (values.length > 0) carrier[name] = values.join(',');
  }
  return carrier;
}
