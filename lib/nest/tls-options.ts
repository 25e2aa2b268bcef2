/**
 * TLS settings of the Nest integration: the module's `tls` option merged with the PEM files named by
 * WEBSOCKETS_TLS_CERT, WEBSOCKETS_TLS_KEY and WEBSOCKETS_TLS_CA, resolved by the node layer's code (shared with a
 * `WebSocketServer` on its own port), and the same settings for the app's own https server.
 */
import type { NestApplicationOptions } from '@nestjs/common';
import { resolveConfig, type Environment } from '../config/index.js';
import { resolveTlsOptions } from '../node/tls-options.js';
import type { WebSocketsTlsOptions } from './websockets-options.interface.js';

export { resolveTlsOptions } from '../node/tls-options.js';

/** What `NestFactory.create()` takes as `httpsOptions`. */
export type HttpsOptions = NonNullable<NestApplicationOptions['httpsOptions']>;

/**
 * The app's https options: the TLS settings, with `handshakeTimeout` set to `openTimeoutMs` (unless `tls` sets
 * it) so that a client stalling its TLS handshake is cut as on the WebSocket listeners, not after Node's 120 s.
 */
export function httpsOptionsOf(tls: Readonly<WebSocketsTlsOptions> | null, openTimeoutMs: number | null): HttpsOptions | undefined {
  if (tls === null) return undefined;
  // Nest's HttpsOptions is a loosely typed subset of Node's TlsOptions; the object is handed to https.createServer.
  return { ...(openTimeoutMs === null ? {} : { handshakeTimeout: openTimeoutMs }), ...tls } as HttpsOptions;
}

/**
 * The same TLS settings as the module's, for the app's own server: pass the result to
 * `NestFactory.create(AppModule, { httpsOptions: websocketsHttpsOptions() })`. It is needed there because the app's
 * server exists before any module is configured. Returns `undefined` when TLS is off, so that the app stays on http.
 * The TLS handshake is bounded by `openTimeoutMs` (WEBSOCKETS_OPEN_TIMEOUT_MS) unless `tls.handshakeTimeout` is given.
 * @param tls the module's `tls` option, when it is configured in code rather than by environment
 * @param env the environment to read WEBSOCKETS_TLS_* and WEBSOCKETS_OPEN_TIMEOUT_MS from (default `process.env`)
 * @throws ConfigError as `resolveTlsOptions`, or for an invalid WEBSOCKETS_OPEN_TIMEOUT_MS
 */
export function websocketsHttpsOptions(tls?: WebSocketsTlsOptions, env: Environment = process.env): HttpsOptions | undefined {
  const resolved = resolveTlsOptions(tls, env);
  return resolved === null ? undefined : httpsOptionsOf(resolved, resolveConfig({}, env).openTimeoutMs);
}
