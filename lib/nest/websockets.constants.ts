/**
 * Injection tokens and fixed names of the Nest integration. Tokens are namespaced strings (as `@nestjs/throttler`
 * does) so that they read well in dependency-injection errors.
 */

/** The token of the raw options given to `WebSocketsModule.forRoot()` / `forRootAsync()`. */
export const WEBSOCKETS_MODULE_OPTIONS = 'WEBSOCKETS:MODULE_OPTIONS';

/** The event name of the frames that carry errors to a client: `{ "event": "exception", "data": ... }` (Nest's own). */
export const EXCEPTION_EVENT = 'exception';

/**
 * Gateway options that only mean something to socket.io, with this package's equivalent where there is one. Given to
 * this adapter, they are ignored with one warning per option name, so that a gateway written for socket.io still
 * starts.
 */
export const SOCKET_IO_ONLY_OPTIONS: Readonly<Record<string, string | null>> = Object.freeze({
  cors: 'allowedOrigins',
  transports: null,
  serveClient: null,
  adapter: null,
  parser: 'messageParser',
  connectTimeout: 'openTimeoutMs',
  pingTimeout: 'pingTimeoutMs',
  pingInterval: 'pingIntervalMs',
  upgradeTimeout: null,
  maxHttpBufferSize: 'maxMessageSize',
  allowRequest: 'handshakeGuards',
  allowUpgrades: null,
  perMessageDeflate: 'compression',
  httpCompression: null,
  wsEngine: null,
  initialPacket: null,
  cookie: null,
  allowEIO3: null,
  destroyUpgrade: null,
  destroyUpgradeTimeout: null,
  cleanupEmptyChildNamespaces: null,
  connectionStateRecovery: null,
});
