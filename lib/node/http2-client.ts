/**
 * `connect(url, { http2: true })`: the client side of RFC 8441. A `wss://` connection opens a stream with an
 * extended CONNECT on an HTTP/2 session to the origin, which every such connection to the same origin (and TLS
 * options) shares; the frames then run over the stream. A session holds as many streams as the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS allows; the next connection opens a second session rather than wait for a slot.
 *
 * The session's TLS offers ALPN `h2` and `http/1.1`. When the server picks `http/1.1`, or its first SETTINGS do not
 * advertise SETTINGS_ENABLE_CONNECT_PROTOCOL, the attempt returns `null` and `connect()` goes on over HTTP/1.1 (one
 * new connection); the origin is then remembered as HTTP/1.1-only for `NO_HTTP2_MEMORY_MS`, so later connections go
 * there directly. Not over a proxy or a Unix socket: those stay HTTP/1.1.
 *
 * A session lives while it has streams; once the last one closes it no longer keeps the process alive and is
 * closed after `IDLE_SESSION_MS` unless a new connection takes it.
 */
import { once } from 'node:events';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import net from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import tls from 'node:tls';
import type { ResolvedConfig, ResolvedProxy } from '../config/index.js';
import { HandshakeLimitError, IncompleteResponseError } from '../errors.js';
import { deflateOffer } from '../protocol/extensions.js';
import { extendedConnectHeaders, formatHost, validateStreamResponse, type HeaderField, type HeaderFields } from '../protocol/handshake.js';
import { clientConnection } from './client-connection.js';
import { widenConnectionWindow, HTTP2_MAX_CONCURRENT_STREAMS, HTTP2_STREAM_WINDOW } from './http2-server.js';
import { destroyWhenAborted } from './http2-stream.js';
import { proxyFor } from './proxy-environment.js';
import { WebSocket } from './websocket.js';

/** How long an idle session (no stream left) is kept for the next connection to the origin. */
const IDLE_SESSION_MS = 5_000;
/** How long an origin that answered without extended CONNECT is not asked again. */
const NO_HTTP2_MEMORY_MS = 60_000;
/** SETTINGS_MAX_CONCURRENT_STREAMS when the server does not say (RFC 9113 §6.5.2 recommends at least 100). */
const DEFAULT_MAX_STREAMS = 100;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Where the attempt connects (the client's `Target`). */
export interface Http2Target {
  readonly url: URL;
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  readonly socketPath: string | null;
}

/** The TLS and request options of `connect()` that this attempt reads. */
export interface Http2ConnectOptions {
  readonly protocols?: string[];
  readonly origin?: string;
  readonly ca?: tls.SecureContextOptions['ca'];
  readonly rejectUnauthorized?: boolean;
  readonly servername?: string;
  readonly cert?: tls.SecureContextOptions['cert'];
  readonly key?: tls.SecureContextOptions['key'];
}

/** A WebSocket, or the `Location` of a redirect. */
export type Http2Attempt = { readonly ws: WebSocket } | { readonly location: string };

/** One shared session and its streams. */
interface SharedSession {
  readonly session: ClientHttp2Session;
  /** The server's SETTINGS_MAX_CONCURRENT_STREAMS: a full session gets a sibling instead of queueing streams. */
  readonly maxStreams: number;
  streams: number;
  idle: NodeJS.Timeout | undefined;
}

/** The sessions to one origin (with one set of TLS options), and the one being opened, if any. */
interface Pool {
  readonly sessions: SharedSession[];
  opening: Promise<SharedSession | null> | null;
}

/** The pools, by origin and TLS options. */
const POOLS = new Map<string, Pool>();
/** Origins that answered without extended CONNECT, until when. */
const NO_HTTP2 = new Map<string, number>();

/**
 * Opens the WebSocket as a stream of an HTTP/2 session to the origin: one that has room for another stream (the
 * server's SETTINGS_MAX_CONCURRENT_STREAMS), else a new one, as browsers do.
 * @returns the WebSocket or a redirect, or `null` when HTTP/2 does not apply (ws://, a Unix socket, a proxy) or the
 *   server does not offer extended CONNECT: then the caller connects over HTTP/1.1
 * @throws what the HTTP/1.1 handshake throws for the same answers (InvalidStatusError, InvalidHeaderError,
 *   HandshakeLimitError, IncompleteResponseError), and TLS or network errors
 */
export async function attemptHttp2(
  target: Http2Target,
  headers: HeaderFields | undefined,
  options: Http2ConnectOptions,
  config: Readonly<ResolvedConfig>,
  proxies: ResolvedProxy,
  track: (socket: Duplex) => void,
): Promise<Http2Attempt | null> {
  if (!target.secure || target.socketPath !== null || proxyFor(proxies, target) !== null) return null;
  const key = sessionKey(target, options);
  const remembered = NO_HTTP2.get(key);
  if (remembered !== undefined) {
    if (remembered > Date.now()) return null;
    NO_HTTP2.delete(key);
  }
  for (;;) {
    let pool = POOLS.get(key);
    if (pool === undefined) {
      pool = { sessions: [], opening: null };
      POOLS.set(key, pool);
    }
    const free = pool.sessions.find((shared) => shared.streams < shared.maxStreams);
    // openStream takes its slot before its first await: the next caller of this turn sees the session fuller.
    if (free !== undefined) return openStream(free, target, headers, options, config, track);
    pool.opening ??= openPooled(pool, key, target, options, config, track);
    const shared = await pool.opening;
    if (shared === null) return null;
  }
}

/** Opens a session into `pool`; `null` (and the origin remembered as HTTP/1.1-only) without extended CONNECT. */
async function openPooled(
  pool: Pool,
  key: string,
  target: Http2Target,
  options: Http2ConnectOptions,
  config: Readonly<ResolvedConfig>,
  track: (socket: Duplex) => void,
): Promise<SharedSession | null> {
  let shared: SharedSession | null;
  try {
    shared = await openSession(target, options, config, track);
  } finally {
    pool.opening = null;
  }
  if (shared === null) {
    if (pool.sessions.length === 0) POOLS.delete(key);
    NO_HTTP2.set(key, Date.now() + NO_HTTP2_MEMORY_MS);
    return null;
  }
  const opened = shared;
  pool.sessions.push(opened);
  const leave = (): void => {
    const index = pool.sessions.indexOf(opened);
    if (index >= 0) pool.sessions.splice(index, 1);
    if (pool.sessions.length === 0 && pool.opening === null && POOLS.get(key) === pool) POOLS.delete(key);
  };
  opened.session.once('close', leave);
  // GOAWAY: no new stream on it; the next connection opens a new session, and this one closes once its streams have.
  opened.session.once('goaway', () => {
    leave();
    opened.session.close();
  });
  return opened;
}

/** The TLS connection with ALPN h2 and http/1.1, then the session and its first SETTINGS; `null` without extended CONNECT. */
async function openSession(
  target: Http2Target,
  options: Http2ConnectOptions,
  config: Readonly<ResolvedConfig>,
  track: (socket: Duplex) => void,
): Promise<SharedSession | null> {
  const socket = tls.connect({
    host: target.host,
    port: target.port,
    // RFC 6066 §3: SNI carries host names only, never an IP literal.
    servername: options.servername ?? (net.isIP(target.host) === 0 ? target.host : undefined),
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  // The attempt that opens the session may give up (its openTimeoutMs) while the session is being set up, and then
  // the socket goes; once the session is up it is shared, and no one attempt's deadline may end it.
  let shared = false;
  const guard = new PassThrough();
  guard.on('error', ignore);
  guard.once('close', () => {
    if (!shared) socket.destroy();
  });
  track(guard);
  await once(socket, 'secureConnect');
  if (socket.alpnProtocol !== 'h2') {
    socket.destroy();
    return null;
  }
  const limits = config.limits;
  const session = http2.connect(target.url.origin.replace(/^wss:/, 'https:'), {
    createConnection: () => socket,
    settings: { enablePush: false, initialWindowSize: HTTP2_STREAM_WINDOW, maxHeaderListSize: (limits.maxNumHeaders + 1) * limits.maxLineLength },
    maxHeaderListPairs: limits.maxNumHeaders + 16,
  });
  session.on('error', ignore);
  const [settings] = (await once(session, 'remoteSettings')) as [http2.Settings];
  if (settings.enableConnectProtocol !== true) {
    session.close();
    return null;
  }
  widenConnectionWindow(session, HTTP2_MAX_CONCURRENT_STREAMS);
  shared = true;
  const maxStreams = Math.min(settings.maxConcurrentStreams ?? DEFAULT_MAX_STREAMS, HTTP2_MAX_CONCURRENT_STREAMS * 10);
  const opened: SharedSession = { session, maxStreams, streams: 0, idle: undefined };
  releaseWhenIdle(opened);
  return opened;
}

/** One extended CONNECT on the session, its answer checked as a 101 would be, then the WebSocket over the stream. */
async function openStream(
  shared: SharedSession,
  target: Http2Target,
  headers: HeaderFields | undefined,
  options: Http2ConnectOptions,
  config: Readonly<ResolvedConfig>,
  track: (socket: Duplex) => void,
): Promise<Http2Attempt> {
  const protocols = options.protocols ?? [];
  const request = extendedConnectHeaders({
    authority: formatHost(target.host, target.port, true),
    path: `${target.url.pathname || '/'}${target.url.search}`,
    protocols,
    extensions: deflateOffer(config.compression),
    origin: options.origin ?? null,
    userAgent: config.userAgentHeader,
    headers,
  });
  const { session } = shared;
  const stream = session.request(request, { endStream: false });
  track(stream);
  takeSession(shared, stream);
  const response = await answerOf(stream);
  const fields = responseFields(response, config);
  const status = Number(response[':status']);
  if (status < 200 || status > 299) {
    const body = await bodyOf(stream, config.limits.maxBodySize);
    const location = fields.find(([name]) => name === 'location')?.[1];
    if (REDIRECT_STATUSES.has(status) && location !== undefined) return { location };
    validateStreamResponse(status, fields, protocols, body);
  }
  const accepted = validateStreamResponse(status, fields, protocols);
  const connection = clientConnection(accepted.extensions, config);
  destroyWhenAborted(stream);
  return {
    ws: new WebSocket({
      socket: stream,
      connection,
      config,
      protocol: accepted.protocol ?? '',
      extensions: accepted.extensions,
      remoteAddress: session.socket?.remoteAddress,
    }),
  };
}

/** The response's header block, or the reason there is none (a reset, the session's end). */
function answerOf(stream: ClientHttp2Stream): Promise<IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const onClose = (): void =>
      reject(new IncompleteResponseError(`the stream closed before the server answered the extended CONNECT (RST_STREAM code ${stream.rstCode ?? 'none'})`));
    stream.once('response', (headers: IncomingHttpHeaders) => {
      stream.off('close', onClose);
      stream.off('error', onError);
      resolve(headers);
    });
    const onError = (error: Error): void => {
      stream.off('close', onClose);
      reject(error);
    };
    stream.once('error', onError);
    stream.once('close', onClose);
  });
}

/**
 * The answer's fields (pseudo-headers left out), under the handshake limits as an HTTP/1.1 response is read.
 * @throws HandshakeLimitError over `maxNumHeaders` or `maxLineLength`
 */
function responseFields(headers: IncomingHttpHeaders, config: Readonly<ResolvedConfig>): HeaderField[] {
  const { maxLineLength, maxNumHeaders } = config.limits;
  const fields: HeaderField[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) {
      const length = name.length + 2 + one.length + 2;
      if (length > maxLineLength) throw new HandshakeLimitError('header-line', maxLineLength, length);
      fields.push([name, one]);
      if (fields.length > maxNumHeaders) throw new HandshakeLimitError('num-headers', maxNumHeaders, fields.length);
    }
  }
  return fields;
}

/** A refusal's body, at most `maxBodySize` bytes. @throws HandshakeLimitError beyond it */
async function bodyOf(stream: ClientHttp2Stream, maxBodySize: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBodySize) throw new HandshakeLimitError('body', maxBodySize, size);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof HandshakeLimitError) throw error;
    // A reset after the status: what came is the body.
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks);
}

/** A stream holds the session: it keeps the process alive and is not closed as idle. */
function takeSession(shared: SharedSession, stream: ClientHttp2Stream): void {
  if (shared.idle !== undefined) clearTimeout(shared.idle);
  shared.idle = undefined;
  if (shared.streams++ === 0) shared.session.ref();
  stream.once('close', () => {
    if (--shared.streams === 0) releaseWhenIdle(shared);
  });
}

/** No stream left: the session no longer keeps the process alive, and closes unless a connection takes it soon. */
function releaseWhenIdle(shared: SharedSession): void {
  const { session } = shared;
  if (session.closed || session.destroyed) return;
  session.unref();
  shared.idle = setTimeout(() => session.close(), IDLE_SESSION_MS);
  shared.idle.unref();
}

/** Connections share a session when they go to the same origin with the same TLS options (the same objects). */
function sessionKey(target: Http2Target, options: Http2ConnectOptions): string {
  const tlsParts = [options.ca, options.cert, options.key].map(identity);
  return `${target.host}|${target.port}|${options.servername ?? ''}|${options.rejectUnauthorized ?? true}|${tlsParts.join(',')}`;
}

const IDENTITIES = new WeakMap<object, number>();
let nextIdentity = 1;

/** A string stays itself; an object (a Buffer, an array of CAs) gets a number of its own. */
function identity(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return String(value);
  let id = IDENTITIES.get(value);
  if (id === undefined) {
    id = nextIdentity++;
    IDENTITIES.set(value, id);
  }
  return `#${id}`;
}

function ignore(): void {}
