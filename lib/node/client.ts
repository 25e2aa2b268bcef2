/**
 * `connect()`: the client side of the opening handshake over `net` or `tls`, with redirects, then a `WebSocket`.
 *
 * The response is read with the core's `ResponseParser` under the handshake limits (status line, header lines,
 * number of headers, body of a refusal), so a hostile server cannot make the client buffer without bound.
 * `openTimeoutMs` covers the whole attempt, redirects included.
 */
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { resolveConfig, type Environment, type ResolvedConfig, type WebSocketsOptions } from '../config.js';
import { ConfigError, HandshakeError, OpenTimeoutError, RedirectError } from '../errors.js';
import { Connection } from '../protocol/connection.js';
import { acceptDeflateResponse, deflateOffer } from '../protocol/extensions.js';
import {
  buildRequest,
  formatHost,
  generateKey,
  ResponseParser,
  validateUpgradeResponse,
  type HandshakeResponse,
  type HeaderFields,
} from '../protocol/handshake.js';
import { createDeflateCodec } from './deflate.js';
import { WebSocket } from './websocket.js';

/** Options of `connect()`: the shared settings plus what the client's request and TLS need. */
export interface ConnectOptions extends WebSocketsOptions {
  /** Subprotocols to offer, in order of preference. */
  protocols?: string[];
  /** The `Origin` header, for servers that check it. */
  origin?: string;
  /** Extra request headers (cookies, authorization); the handshake's own headers cannot be replaced. */
  headers?: HeaderFields;
  /** wss: CA certificates to trust instead of Node's bundled ones. */
  ca?: tls.SecureContextOptions['ca'];
  /** wss: verify the server's certificate and hostname. @default true */
  rejectUnauthorized?: boolean;
  /** wss: the name sent in SNI and checked against the certificate. @default the URL's host name (none for an IP) */
  servername?: string;
  /** wss: client certificate, for servers that ask for one. */
  cert?: tls.SecureContextOptions['cert'];
  /** wss: the client certificate's key. */
  key?: tls.SecureContextOptions['key'];
  /** Most redirects (301, 302, 303, 307, 308) followed; a redirect from wss to ws is always refused. @default 10 */
  maxRedirects?: number;
  /** The environment the settings fall back on. @default process.env (read once, per call) */
  env?: Environment;
}

/** RFC 9110 §15.4: the redirects a WebSocket client follows (the handshake is a GET, so all of them apply). */
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const DEFAULT_MAX_REDIRECTS = 10;
const DEFAULT_PORTS = { ws: 80, wss: 443 } as const;

/** Where one attempt connects. */
interface Target {
  readonly url: URL;
  readonly secure: boolean;
  /** Host name or IP, without the brackets of an IPv6 literal. */
  readonly host: string;
  readonly port: number;
}

type Attempt = { readonly ws: WebSocket } | { readonly location: string };

/**
 * Opens a WebSocket connection to a `ws://` or `wss://` URL (IPv6 literals in brackets, `ws://[::1]:8080/`).
 * Follows up to `maxRedirects` redirects, never from wss down to ws.
 * @returns the open `WebSocket`
 * @throws ConfigError for a bad URL or option
 * @throws HandshakeError when the open timeout passes, there are too many redirects, or a redirect goes from wss to ws
 * @throws HandshakeLimitError when the response goes over a handshake limit
 * @throws InvalidStatusError when the server answers with a status other than 101 (not a followed redirect)
 * @throws InvalidHeaderError when the 101 is not a valid WebSocket response (accept key, subprotocol, extensions)
 * @throws Error from `net`/`tls` when the connection fails (ECONNREFUSED, an untrusted certificate, a wrong hostname)
 */
export async function connect(url: string | URL, options: ConnectOptions = {}): Promise<WebSocket> {
  const config = resolveConfig(options, options.env ?? process.env);
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  if (!Number.isSafeInteger(maxRedirects) || maxRedirects < 0) {
    throw new ConfigError(`option maxRedirects must be a non-negative integer; got ${String(maxRedirects)}`, 'maxRedirects', maxRedirects);
  }
  let target = parseTarget(url);

  // One deadline for the whole opening handshake, redirects included.
  let current: Duplex | undefined;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const timeoutMs = config.openTimeoutMs;
  if (timeoutMs !== null) {
    timer = setTimeout(() => {
      timedOut = true;
      current?.destroy(new OpenTimeoutError(timeoutMs));
    }, timeoutMs);
  }
  try {
    for (let redirects = 0; ; redirects++) {
      const result = await attempt(target, options, config, (socket) => {
        current = socket;
        if (timedOut) socket.destroy();
      });
      if ('ws' in result) return result.ws;
      if (redirects >= maxRedirects) throw new RedirectError(`too many redirects (more than ${maxRedirects}, option maxRedirects)`, result.location);
      const next = parseTarget(resolveLocation(result.location, target.url));
      if (target.secure && !next.secure) {
        throw new RedirectError(`refusing a redirect from ${target.url.href} to ${next.url.href}: wss must not go down to ws`, result.location);
      }
      target = next;
    }
  } catch (error) {
    if (timedOut && timeoutMs !== null && !(error instanceof HandshakeError)) {
      throw new OpenTimeoutError(timeoutMs, { cause: error });
    }
    throw error;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** One connection and handshake: a `WebSocket`, or the `Location` of a redirect. */
async function attempt(
  target: Target,
  options: ConnectOptions,
  config: Readonly<ResolvedConfig>,
  onSocket: (socket: Duplex) => void,
): Promise<Attempt> {
  const socket: net.Socket | tls.TLSSocket = target.secure
    ? tls.connect({
        host: target.host,
        port: target.port,
        // RFC 6066 §3: SNI carries host names only, never an IP literal.
        servername: options.servername ?? (net.isIP(target.host) === 0 ? target.host : undefined),
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        rejectUnauthorized: options.rejectUnauthorized ?? true,
        ALPNProtocols: ['http/1.1'],
      })
    : net.connect({ host: target.host, port: target.port, noDelay: true });
  onSocket(socket);
  try {
    await once(socket, target.secure ? 'secureConnect' : 'connect');
    const key = generateKey();
    const protocols = options.protocols ?? [];
    socket.write(
      buildRequest({
        host: formatHost(target.host, target.port, target.secure),
        path: `${target.url.pathname || '/'}${target.url.search}`,
        key,
        protocols,
        extensions: deflateOffer(config.compression),
        origin: options.origin ?? null,
        userAgent: config.userAgentHeader,
        headers: options.headers,
      }),
    );
    const parser = new ResponseParser(config.limits);
    const response = await readResponse(socket, parser);
    const location = response.headers.get('Location');
    if (REDIRECT_STATUSES.has(response.status) && location !== undefined) {
      socket.destroy();
      return { location };
    }
    const accepted = validateUpgradeResponse(response, { key, protocols });
    const params = acceptDeflateResponse(accepted.extensions === '' ? undefined : accepted.extensions, config.compression);
    const connection = new Connection({
      side: 'client',
      maxMessageSize: config.limits.maxMessageSize,
      maxFragments: config.limits.maxFragments,
      codec: params === null ? null : createDeflateCodec(params, config.compression!.memLevel),
      compressionThreshold: config.compression?.threshold,
    });
    return {
      ws: new WebSocket({
        socket,
        connection,
        config,
        protocol: accepted.protocol ?? '',
        extensions: accepted.extensions,
        remoteAddress: socket.remoteAddress,
        head: parser.rest,
      }),
    };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/** Feeds the socket to the parser until the response is complete; leaves the socket paused, with no listener. */
function readResponse(socket: net.Socket, parser: ResponseParser): Promise<HandshakeResponse> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
    };
    const settle = (run: () => HandshakeResponse | null): void => {
      let response: HandshakeResponse | null;
      try {
        response = run();
      } catch (error) {
        cleanup();
        reject(error);
        return;
      }
      if (response !== null) {
        cleanup();
        resolve(response);
      }
    };
    const onData = (chunk: Buffer): void => settle(() => parser.push(chunk));
    const onEnd = (): void => settle(() => parser.end());
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => settle(() => parser.end());
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

/** Checks a URL and splits out what `net`/`tls` need. @throws ConfigError for a scheme other than ws/wss */
function parseTarget(input: string | URL): Target {
  let url: URL;
  try {
    url = new URL(input);
  } catch (error) {
    throw new ConfigError(`invalid WebSocket URL ${JSON.stringify(String(input))}`, 'url', input);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new ConfigError(`a WebSocket URL starts with ws:// or wss://; got ${JSON.stringify(url.href)}`, 'url', input);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError('credentials in a WebSocket URL are not supported; send an Authorization header instead', 'url', url.origin);
  }
  const secure = url.protocol === 'wss:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? DEFAULT_PORTS[secure ? 'wss' : 'ws'] : Number(url.port);
  return { url, secure, host, port };
}

/** Resolves a `Location` against the current URL; http and https map to ws and wss, as browsers do for WebSocket URLs. */
function resolveLocation(location: string, base: URL): URL {
  let url: URL;
  try {
    url = new URL(location, base);
  } catch {
    throw new RedirectError(`invalid redirect location ${JSON.stringify(location)}`, location);
  }
  if (url.protocol === 'http:') url = new URL(`ws:${url.href.slice('http:'.length)}`);
  else if (url.protocol === 'https:') url = new URL(`wss:${url.href.slice('https:'.length)}`);
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new RedirectError(`redirect to a URL that is not ws or wss: ${JSON.stringify(location)}`, location);
  }
  return url;
}
