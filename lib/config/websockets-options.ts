/**
 * The options every server, client and module takes (`WebSocketsOptions`): one field per row of `SETTINGS` that the
 * protocol core and the Node layer use, each documented with its unit, default and variable.
 */
/** Compression settings; `false` turns permessage-deflate off. */
export interface CompressionOptions {
  /** LZ77 window bits (8-15) of the server's compressor. @default 12 */
  serverMaxWindowBits?: number;
  /** LZ77 window bits (8-15) asked of the client's compressor when it offers `client_max_window_bits`. @default 12 */
  clientMaxWindowBits?: number;
  /** Keep the server's compression context between messages. @default true */
  serverNoContextTakeover?: boolean;
  /** Ask the client not to keep its compression context between messages. @default false */
  clientNoContextTakeover?: boolean;
  /** zlib memLevel (1-9) of the compressor. @default 5 */
  memLevel?: number;
  /** Outgoing messages smaller than this many bytes are sent uncompressed. @default 128 */
  threshold?: number;
}

/** Options shared by the server, the client and the Nest module. Every field is optional. */
export interface WebSocketsOptions {
  /**
   * Longest request or status line, and longest header line, accepted in the opening handshake, in bytes, CRLF
   * included. A server answers a longer request line with 414 and a longer header line with 431.
   * @default 8192, or the WEBSOCKETS_MAX_LINE_LENGTH environment variable
   */
  maxLineLength?: number;
  /** Most header lines in a handshake (431 on a server). @default 128, or WEBSOCKETS_MAX_NUM_HEADERS */
  maxNumHeaders?: number;
  /** Largest handshake response body a client reads, in bytes. @default 1048576, or WEBSOCKETS_MAX_BODY_SIZE */
  maxBodySize?: number;
  /**
   * `Server` header of every handshake response; `null` sends none.
   * @default `Node.js/x.y.z nestjs-websockets/X.Y`, or WEBSOCKETS_SERVER (an empty value sends none)
   */
  serverHeader?: string | null;
  /**
   * `User-Agent` header of the client's request; `null` sends none.
   * @default `Node.js/x.y.z nestjs-websockets/X.Y`, or WEBSOCKETS_USER_AGENT (an empty value sends none)
   */
  userAgentHeader?: string | null;
  /**
   * Largest incoming message, in bytes, after decompression. A larger one closes the connection with 1009.
   * @default 1048576, or WEBSOCKETS_MAX_MESSAGE_SIZE
   */
  maxMessageSize?: number;
  /**
   * Most frames (fragments) in one incoming message; one more closes the connection with 1008. Bounds the work a
   * peer can cause with a flood of tiny or empty continuation frames.
   * @default 16384, or WEBSOCKETS_MAX_FRAGMENTS
   */
  maxFragments?: number;
  /**
   * Bytes received and not yet taken by the application above which the socket is paused and parsing stops.
   * @default 65536, or WEBSOCKETS_READ_HIGH_WATER_MARK
   */
  readHighWaterMark?: number;
  /** Buffered outgoing bytes above which `send()` waits. @default 32768, or WEBSOCKETS_WRITE_HIGH_WATER_MARK */
  writeHighWaterMark?: number;
  /** Buffered outgoing bytes below which waiting sends resume. @default 8192, or WEBSOCKETS_WRITE_LOW_WATER_MARK */
  writeLowWaterMark?: number;
  /**
   * Most bytes one connection may hold for sending: the socket's write buffer, this tick's batch and the sends
   * waiting for them. A send that would pass it applies the `slowConsumer` policy; a single message larger than
   * the bound is still sent when nothing else is waiting. `null` for no limit (not recommended: a peer that stops
   * reading then makes the server keep everything sent to it).
   * @default 1048576, or WEBSOCKETS_MAX_BUFFERED_AMOUNT (`off` for no limit)
   */
  maxBufferedAmount?: number | null;
  /**
   * What a send past `maxBufferedAmount` does. `'close'`: the waiting sends are dropped (they reject with
   * `SlowConsumerError`) and the connection is closed with 1013, its socket destroyed within `closeTimeoutMs`.
   * `'drop'`: that message is not sent; `send()` resolves `false` and the connection emits `'drop'`.
   * @default 'close', or WEBSOCKETS_SLOW_CONSUMER
   */
  slowConsumer?: SlowConsumerPolicy;
  /** permessage-deflate settings, or `false` to turn it off. @default on, or WEBSOCKETS_COMPRESSION=off */
  compression?: CompressionOptions | boolean;
  /** Time allowed for the opening handshake, in ms; `null` for none. @default 10000, or WEBSOCKETS_OPEN_TIMEOUT_MS */
  openTimeoutMs?: number | null;
  /** Interval between keepalive pings, in ms; `null` for none. @default 20000, or WEBSOCKETS_PING_INTERVAL_MS */
  pingIntervalMs?: number | null;
  /** Time to wait for a keepalive pong, in ms; `null` for none. @default 20000, or WEBSOCKETS_PING_TIMEOUT_MS */
  pingTimeoutMs?: number | null;
  /** Time allowed for the closing handshake, in ms; `null` for none. @default 10000, or WEBSOCKETS_CLOSE_TIMEOUT_MS */
  closeTimeoutMs?: number | null;
  /**
   * Most connections a server holds at once, handshakes in progress included; above it the server answers 503 with
   * `Retry-After` before the upgrade. `null` for no limit (0 is refused).
   * @default null, or WEBSOCKETS_MAX_CONNECTIONS (`off` for no limit)
   */
  maxConnections?: number | null;
  /**
   * Most connections from one client address at once, handshakes in progress included (503 with `Retry-After` above
   * it). Behind a reverse proxy every client has the proxy's address. `null` for no limit.
   * @default null, or WEBSOCKETS_MAX_CONNECTIONS_PER_ADDRESS (`off` for no limit)
   */
  maxConnectionsPerAddress?: number | null;
  /**
   * New connections accepted per second from one client address: a burst of this many, then one every 1/N s (a
   * token bucket); above it 503 with `Retry-After`. `null` for no limit.
   * @default null, or WEBSOCKETS_MAX_HANDSHAKES_PER_SECOND_PER_ADDRESS (`off` for no limit)
   */
  maxHandshakesPerSecondPerAddress?: number | null;
  /**
   * How a server sends a refusal in the 4xx range decided after the request was read as a valid upgrade: by its
   * handshake hook (Nest handshake guards: 401, 403, 404 ...) or by `allowedOrigins` (403). `'http'`: an HTTP
   * response with the status, which a browser's page never sees (it gets a close with 1006). `'in-band'`: a 101,
   * then at once a close with 4000 + status (4401, 4403 ...) and the refusal's message as reason (cut to 123 bytes),
   * which the page's `close` event shows. `'auto'`: in-band when the request carries an `Origin` header (browsers
   * always send one; ws, Python websockets and `connect()` send none unless told to), else HTTP. Malformed requests,
   * handshake limits (414, 431), connection limits (503 with `Retry-After`), 5xx and unknown paths on a server's own
   * port are always HTTP.
   * @default 'auto', or WEBSOCKETS_REFUSALS
   */
  refusals?: RefusalMode;
}

/** What a send past `maxBufferedAmount` does (see `WebSocketsOptions.slowConsumer`). */
export type SlowConsumerPolicy = 'close' | 'drop';

/** How a server sends a 4xx refusal of a handshake (see `WebSocketsOptions.refusals`). */
export type RefusalMode = 'http' | 'in-band' | 'auto';

/** The name of every field of `WebSocketsOptions` (the type checks that none is missing or extra). */
export const WEBSOCKETS_OPTION_NAMES = Object.freeze([
  'maxLineLength',
  'maxNumHeaders',
  'maxBodySize',
  'serverHeader',
  'userAgentHeader',
  'maxMessageSize',
  'maxFragments',
  'readHighWaterMark',
  'writeHighWaterMark',
  'writeLowWaterMark',
  'maxBufferedAmount',
  'slowConsumer',
  'compression',
  'openTimeoutMs',
  'pingIntervalMs',
  'pingTimeoutMs',
  'closeTimeoutMs',
  'maxConnections',
  'maxConnectionsPerAddress',
  'maxHandshakesPerSecondPerAddress',
  'refusals',
] as const satisfies ReadonlyArray<keyof WebSocketsOptions>);

/** Fails to compile when a field of `WebSocketsOptions` is missing from `WEBSOCKETS_OPTION_NAMES`. */
type MissingName = Exclude<keyof WebSocketsOptions, (typeof WEBSOCKETS_OPTION_NAMES)[number]>;
const allNamed: MissingName extends never ? true : never = true;
void allNamed;

/** The `WebSocketsOptions` fields of `options` that are set, and nothing else. */
export function pickWebSocketsOptions(options: Readonly<WebSocketsOptions>): WebSocketsOptions {
  const picked: Record<string, unknown> = {};
  for (const name of WEBSOCKETS_OPTION_NAMES) if (options[name] !== undefined) picked[name] = options[name];
  return picked as WebSocketsOptions;
}
