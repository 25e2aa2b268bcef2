/**
 * `connect()`: the client side of the opening handshake over `net` or `tls`, directly, through an HTTP(S) or SOCKS5
 * proxy, or over a Unix domain socket, with redirects, then a `WebSocket`.
 *
 * The response is read with the core's `ResponseParser` under the handshake limits (status line, header lines,
 * number of headers, body of a refusal), and so is a proxy's answer, so a hostile server or proxy cannot make the
 * client buffer without bound. `openTimeoutMs` covers the whole attempt: proxy, tunnel, TLS, handshake, redirects.
 * A redirect to another origin drops the credentials among the extra headers (Authorization, Cookie,
 * Proxy-Authorization), as browsers and Python websockets 16.1 do.
 *
 * A little over 400 lines: one attempt runs through transport, tunnel, TLS, handshake and redirect under one
 * deadline, and the steps hand the same socket and timer along; the proxies' protocols are in their own files.
 */
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import {
  resolveConfig,
  resolveMaxRedirects,
  resolveProxy,
  type Environment,
  type ProxyOptions,
  type ProxyUrl,
  type ResolvedConfig,
  type ResolvedProxy,
  type WebSocketsOptions,
} from '../config/index.js';
import { ConfigError, OpenTimeoutError, ProxyError, RedirectError } from '../errors.js';
import { describeSetting } from '../config/settings.js';
import { deflateOffer } from '../protocol/extensions.js';
import {
  buildRequest,
  formatHost,
  generateKey,
  ResponseParser,
  validateUpgradeResponse,
  type HeaderField,
  type HeaderFields,
} from '../protocol/handshake.js';
import { clientConnection } from './client-connection.js';
import { openHttpTunnel, type ProxyTlsOptions } from './http-proxy.js';
import { attemptHttp2 } from './http2-client.js';
import { proxyFor } from './proxy-environment.js';
import { readResponse } from './response-reader.js';
import { openSocksTunnel } from './socks-proxy.js';
import { WebSocket } from './websocket.js';

export type { ProxyTlsOptions } from './http-proxy.js';

/** Options of `connect()`: the shared settings plus what the client's request, TLS, proxy and socket need. */
export interface ConnectOptions extends WebSocketsOptions, ProxyOptions {
  /** Subprotocols to offer, in order of preference. */
  protocols?: string[];
  /** The `Origin` header, for servers that check it. */
  origin?: string;
  /**
   * Extra request headers (cookies, authorization); the handshake's own headers cannot be replaced. A redirect to
   * another origin (scheme, host or port) drops `Authorization`, `Cookie` and `Proxy-Authorization` from them.
   */
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
  /**
   * Most redirects (301, 302, 303, 307, 308) followed; a redirect from wss to ws is always refused.
   * @default 10, or WEBSOCKETS_MAX_REDIRECTS
   */
  maxRedirects?: number;
  /** TLS to an `https://` proxy (CA, certificate check, SNI, client certificate). */
  proxyTls?: ProxyTlsOptions;
  /**
   * Connect over this Unix domain socket instead of TCP; the URL still gives the `Host` header and the path. A
   * `ws+unix:/path/to.sock:/request/path` URL says the same in one string. No proxy is used over a Unix socket.
   */
  socketPath?: string;
  /** The environment the settings and the proxy variables fall back on. @default process.env (read once, per call) */
  env?: Environment;
  /**
   * wss: open the connection as a stream of an HTTP/2 session to the origin (RFC 8441), shared by every connection
   * to it, when the server advertises extended CONNECT; over HTTP/1.1 otherwise. Not through a proxy or a Unix
   * socket. @default false
   */
  http2?: boolean;
}

/** RFC 9110 §15.4: the redirects a WebSocket client follows (the handshake is a GET, so all of them apply). */
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const DEFAULT_PORTS = { ws: 80, wss: 443 } as const;
/** The credentials that must not follow a redirect to another origin (Python websockets 16.1 drops the same). */
const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set(['authorization', 'cookie', 'proxy-authorization']);
/** The `Host` of a URL given as `ws+unix:`, which names no host (what Python websockets' unix_connect uses). */
const UNIX_HOST = 'localhost';

/** Where one attempt connects. */
interface Target {
  /** The ws/wss URL that gives `Host` and the request path (for `ws+unix:`, `ws://localhost/<path>`). */
  readonly url: URL;
  readonly secure: boolean;
  /** Host name or IP, without the brackets of an IPv6 literal. */
  readonly host: string;
  readonly port: number;
  /** The Unix socket to connect to instead of `host:port`, or `null` for TCP. */
  readonly socketPath: string | null;
}

type Attempt = { readonly ws: WebSocket } | { readonly location: string };

/** The sockets of one attempt (a proxy connection, the TLS over it), so that a deadline or a failure ends them all. */
class AttemptSockets {
  readonly #sockets = new Set<Duplex>();
  #failure: Error | null = null;

  /** Registers a socket; one registered after the deadline is destroyed at once. */
  readonly track = (socket: Duplex): void => {
    this.#sockets.add(socket);
    if (this.#failure !== null) socket.destroy(this.#failure);
  };

  /** Destroys every socket of the attempt (with `error`, which their pending waits then reject with). */
  destroyAll(error?: Error): void {
    if (error !== undefined) this.#failure = error;
    for (const socket of this.#sockets) socket.destroy(error);
    this.#sockets.clear();
  }

  /** The attempt succeeded: when the top socket closes, the ones under it (a proxy connection) close too. */
  handOver(top: Duplex): void {
    const below = [...this.#sockets].filter((socket) => socket !== top);
    this.#sockets.clear();
    if (below.length > 0) top.once('close', () => below.forEach((socket) => socket.destroy()));
  }
}

/**
 * Opens a WebSocket connection to a `ws://`, `wss://`, `ws+unix:` or `wss+unix:` URL (IPv6 literals in brackets,
 * `ws://[::1]:8080/`; a Unix socket as `ws+unix:/run/app.sock:/chat`), through the proxy that `proxy` or the
 * environment gives. Follows up to `maxRedirects` redirects, never from wss down to ws.
 * @returns the open `WebSocket`
 * @throws ConfigError for a bad URL, option or proxy variable
 * @throws OpenTimeoutError when `openTimeoutMs` passes (proxy and redirects included)
 * @throws RedirectError for too many redirects, a redirect from wss to ws, or one to another origin over a Unix socket
 * @throws ProxyError when the proxy refuses the tunnel (its status) or answers something invalid (the limit hit)
 * @throws HandshakeLimitError when the response goes over a handshake limit
 * @throws InvalidStatusError when the server answers with a status other than 101 (not a followed redirect)
 * @throws InvalidHeaderError when the 101 is not a valid WebSocket response (accept key, subprotocol, extensions)
 * @throws IncompleteResponseError when the server closes the connection before its response is complete
 * @throws Error from `net`/`tls`/`dns` when the connection fails (ECONNREFUSED, an untrusted certificate, ...)
 */
export async function connect(url: string | URL, options: ConnectOptions = {}): Promise<WebSocket> {
  const env = options.env ?? process.env;
  const config = resolveConfig(options, env);
  const maxRedirects = resolveMaxRedirects(options.maxRedirects, env);
  const proxies = resolveProxy(options, env);
  let target = parseTarget(url, options.socketPath);
  let headers = options.headers;

  // One deadline for the whole opening handshake, redirects included. Destroying the sockets ends the waits on
  // them; the race also ends waits on no socket (the DNS lookup of socks5://).
  let sockets = new AttemptSockets();
  const run = async (): Promise<WebSocket> => {
    for (let redirects = 0; ; redirects++) {
      const result =
        (options.http2 === true ? await attemptHttp2(target, headers, options, config, proxies, sockets.track) : null) ??
        (await attempt(target, headers, options, config, proxies, sockets));
      if ('ws' in result) return result.ws;
      sockets = new AttemptSockets();
      if (redirects >= maxRedirects) {
        throw new RedirectError(`too many redirects (more than ${maxRedirects}; ${describeSetting('maxRedirects')})`, result.location);
      }
      const next = redirectTarget(result.location, target);
      if (target.secure && !next.secure) {
        throw new RedirectError(`refusing a redirect from ${target.url.href} to ${next.url.href}: wss must not go down to ws`, result.location);
      }
      if (next.url.origin !== target.url.origin) headers = withoutCredentials(headers);
      target = next;
    }
  };
  const timeoutMs = config.openTimeoutMs;
  const running = run();
  if (timeoutMs === null) return running;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new OpenTimeoutError(timeoutMs);
      sockets.destroyAll(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    return await Promise.race([running, deadline]);
  } catch (error) {
    // Whatever the abandoned attempt still does ends in a destroyed socket; a connection it opens is closed.
    running.then((ws) => ws.terminate(), () => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** One connection and handshake: a `WebSocket`, or the `Location` of a redirect. */
async function attempt(
  target: Target,
  headers: HeaderFields | undefined,
  options: ConnectOptions,
  config: Readonly<ResolvedConfig>,
  proxies: ResolvedProxy,
  sockets: AttemptSockets,
): Promise<Attempt> {
  try {
    const socket = await openTransport(target, options, config, proxies, sockets.track);
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
        headers,
      }),
    );
    const parser = new ResponseParser(config.limits);
    const response = await readResponse(socket, parser);
    const location = response.headers.get('Location');
    if (REDIRECT_STATUSES.has(response.status) && location !== undefined) {
      sockets.destroyAll();
      return { location };
    }
    const accepted = validateUpgradeResponse(response, { key, protocols });
    const connection = clientConnection(accepted.extensions, config);
    sockets.handOver(socket);
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
    sockets.destroyAll();
    throw error;
  }
}

/**
 * The connection the handshake runs over: a Unix socket, a direct TCP connection, or a tunnel through the proxy
 * that applies to the target; with TLS on top for wss.
 */
async function openTransport(
  target: Target,
  options: ConnectOptions,
  config: Readonly<ResolvedConfig>,
  proxies: ResolvedProxy,
  track: (socket: Duplex) => void,
): Promise<net.Socket> {
  if (target.socketPath !== null) {
    const socket = net.connect({ path: target.socketPath });
    track(socket);
    await once(socket, 'connect');
    return target.secure ? startTls(socket, target, options, track, null) : socket;
  }
  const proxy = proxyFor(proxies, target);
  if (proxy === null) {
    const socket: net.Socket = target.secure
      ? tls.connect({ host: target.host, port: target.port, ...serverTls(target, options) })
      : net.connect({ host: target.host, port: target.port, noDelay: true });
    track(socket);
    await once(socket, target.secure ? 'secureConnect' : 'connect');
    return socket;
  }
  const tunnel = proxy.scheme === 'socks5' || proxy.scheme === 'socks5h'
    ? await openSocksTunnel(proxy, { host: target.host, port: target.port, track })
    : await openHttpTunnel(proxy, {
        host: target.host,
        port: target.port,
        limits: config.limits,
        userAgent: config.userAgentHeader,
        tls: options.proxyTls,
        track,
      });
  return target.secure ? startTls(tunnel, target, options, track, proxy) : tunnel;
}

/** The server's TLS options: SNI, CA, client certificate, verification, ALPN. */
function serverTls(target: Target, options: ConnectOptions): tls.ConnectionOptions {
  return {
    // RFC 6066 §3: SNI carries host names only, never an IP literal.
    servername: options.servername ?? (net.isIP(target.host) === 0 ? target.host : undefined),
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    ALPNProtocols: ['http/1.1'],
  };
}

/** TLS to the server over an open connection (a tunnel or a Unix socket). */
async function startTls(
  socket: net.Socket,
  target: Target,
  options: ConnectOptions,
  track: (socket: Duplex) => void,
  proxy: ProxyUrl | null,
): Promise<net.Socket> {
  // TLS takes over the connection's handle: bytes already read into the stream would be lost, and a TLS server
  // never speaks first, so they can only be a broken proxy's.
  if (proxy !== null && socket.readableLength > 0) {
    throw new ProxyError(`proxy ${proxy.href} sent data through the tunnel before the TLS handshake`, { proxy: proxy.href });
  }
  const secure = tls.connect({ socket, ...serverTls(target, options) });
  track(secure);
  await once(secure, 'secureConnect');
  return secure;
}

/**
 * Checks a URL and splits out what `net`/`tls` need.
 * @throws ConfigError for a scheme other than ws, wss, ws+unix or wss+unix, credentials in the URL, or a Unix socket
 *   given twice
 */
function parseTarget(input: string | URL, socketPathOption: string | undefined): Target {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new ConfigError(`invalid WebSocket URL ${JSON.stringify(String(input))}`, 'url', input);
  }
  if (url.protocol === 'ws+unix:' || url.protocol === 'wss+unix:') {
    if (socketPathOption !== undefined) {
      throw new ConfigError('give the Unix socket either in a ws+unix: URL or in the socketPath option, not both', 'socketPath', socketPathOption);
    }
    return unixTarget(url);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new ConfigError(`a WebSocket URL starts with ws://, wss://, ws+unix: or wss+unix:; got ${JSON.stringify(url.href)}`, 'url', input);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError('credentials in a WebSocket URL are not supported; send an Authorization header instead', 'url', url.origin);
  }
  if (socketPathOption !== undefined && (typeof socketPathOption !== 'string' || socketPathOption === '')) {
    throw new ConfigError(`option socketPath must be a file path; got ${String(socketPathOption)}`, 'socketPath', socketPathOption);
  }
  const secure = url.protocol === 'wss:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? DEFAULT_PORTS[secure ? 'wss' : 'ws'] : Number(url.port);
  return { url, secure, host, port, socketPath: socketPathOption ?? null };
}

/**
 * `ws+unix:/path/to.sock:/request/path?query`, the form of the `ws` package: the socket path up to the first colon
 * of the path, the request path after it (`/` when there is none).
 */
function unixTarget(url: URL): Target {
  const secure = url.protocol === 'wss+unix:';
  const colon = url.pathname.indexOf(':');
  const encodedSocket = colon === -1 ? url.pathname : url.pathname.slice(0, colon);
  const requestPath = colon === -1 || colon === url.pathname.length - 1 ? '/' : url.pathname.slice(colon + 1);
  let socketPath: string;
  try {
    socketPath = decodeURIComponent(encodedSocket);
  } catch {
    socketPath = '';
  }
  if (socketPath === '' || !requestPath.startsWith('/')) {
    throw new ConfigError(
      `a Unix socket URL is ${url.protocol}/path/to.sock:/request/path; got ${JSON.stringify(url.href)}`,
      'url',
      url.href,
    );
  }
  const virtual = new URL(`${secure ? 'wss' : 'ws'}://${UNIX_HOST}${requestPath}${url.search}`);
  return { url: virtual, secure, host: UNIX_HOST, port: DEFAULT_PORTS[secure ? 'wss' : 'ws'], socketPath };
}

/**
 * Where a redirect goes. Over a Unix socket only the path can change: another origin names a host that the socket
 * does not reach, as in Python websockets.
 * @throws RedirectError for an invalid location, or one to another origin over a Unix socket
 */
function redirectTarget(location: string, current: Target): Target {
  const url = resolveLocation(location, current.url);
  if (current.socketPath === null) return parseTarget(url, undefined);
  if (url.origin !== current.url.origin) {
    throw new RedirectError(`cannot follow a redirect to another origin (${url.href}) over a Unix socket`, location);
  }
  return { ...current, url };
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

/** The extra headers without the credentials that must not reach another origin. */
function withoutCredentials(headers: HeaderFields | undefined): HeaderFields | undefined {
  if (headers === undefined) return undefined;
  const pairs: ReadonlyArray<HeaderField> = Array.isArray(headers)
    ? (headers as ReadonlyArray<HeaderField>)
    : Object.entries(headers as Readonly<Record<string, string>>);
  return pairs.filter(([name]) => typeof name !== 'string' || !CREDENTIAL_HEADERS.has(name.toLowerCase()));
}
