/**
 * A tunnel through an HTTP or HTTPS proxy: a TCP (or, for `https://` proxies, TLS) connection to the proxy, then
 * `CONNECT host:port` (RFC 9110 §9.3.6) with `Proxy-Authorization: Basic` from the proxy URL's credentials.
 *
 * The proxy's answer is read by the core's `ResponseParser` in CONNECT mode, under the handshake limits
 * (`maxLineLength`, `maxNumHeaders`, `maxBodySize` for a refusal's body), so a proxy that answers garbage or an
 * endless header costs what a server's handshake response would; the caller's `openTimeoutMs` bounds the time.
 * ws:// goes through CONNECT too, never as a proxied GET: a proxy that forwards requests would not pass the upgrade.
 */
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Limits, ProxyUrl } from '../config/index.js';
import { HandshakeError, IncompleteResponseError, OpenTimeoutError, ProxyError } from '../errors.js';
import { ResponseParser } from '../protocol/handshake.js';
import { buildConnectRequest } from '../protocol/proxy-connect.js';
import { readResponse } from './response-reader.js';

/** TLS between the client and an `https://` proxy (the server's own TLS options do not apply to it). */
export interface ProxyTlsOptions {
  /** CA certificates to trust for the proxy instead of Node's bundled ones. */
  ca?: tls.SecureContextOptions['ca'];
  /** Verify the proxy's certificate and host name. @default true */
  rejectUnauthorized?: boolean;
  /** The name sent in SNI and checked against the proxy's certificate. @default the proxy's host name (none for an IP) */
  servername?: string;
  /** A client certificate for the proxy. */
  cert?: tls.SecureContextOptions['cert'];
  /** The client certificate's key. */
  key?: tls.SecureContextOptions['key'];
}

/** What the tunnel request needs besides the proxy. */
export interface HttpTunnelOptions {
  /** The tunnel's destination (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  readonly limits: Limits;
  /** `User-Agent` of the CONNECT request; `null` sends none. */
  readonly userAgent: string | null;
  readonly tls?: ProxyTlsOptions;
  /** Called with every socket opened, so that the caller's deadline can destroy it. */
  readonly track: (socket: Duplex) => void;
}

const PROXY_AUTHENTICATION_REQUIRED = 407;

/**
 * Connects to the proxy and asks it for a tunnel.
 * @returns the connection to the proxy, now a tunnel to `host:port` (TLS to the server is the caller's job)
 * @throws ProxyError when the proxy refuses (its status, reason, headers and body) or answers with something that is
 *   not a valid HTTP response under the limits (the limit or the parse error is named, and is the `cause`)
 * @throws Error from `net`/`tls` when the proxy cannot be reached or its certificate is refused
 */
export async function openHttpTunnel(proxy: ProxyUrl, options: HttpTunnelOptions): Promise<net.Socket> {
  const proxyTls = options.tls ?? {};
  const socket: net.Socket =
    proxy.scheme === 'https'
      ? tls.connect({
          host: proxy.host,
          port: proxy.port,
          // RFC 6066 §3: SNI carries host names only.
          servername: proxyTls.servername ?? (net.isIP(proxy.host) === 0 ? proxy.host : undefined),
          ca: proxyTls.ca,
          cert: proxyTls.cert,
          key: proxyTls.key,
          rejectUnauthorized: proxyTls.rejectUnauthorized ?? true,
          ALPNProtocols: ['http/1.1'],
        })
      : net.connect({ host: proxy.host, port: proxy.port, noDelay: true });
  options.track(socket);
  await once(socket, proxy.scheme === 'https' ? 'secureConnect' : 'connect');
  const destination = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
  socket.write(
    buildConnectRequest({ host: options.host, port: options.port, userAgent: options.userAgent, credentials: proxy.credentials }),
  );
  const parser = new ResponseParser(options.limits, { method: 'CONNECT' });
  let response;
  try {
    response = await readResponse(socket, parser);
  } catch (error) {
    if (error instanceof OpenTimeoutError || !(error instanceof HandshakeError)) throw error;
    throw new ProxyError(
      error instanceof IncompleteResponseError
        ? `proxy ${proxy.href} closed the connection before answering CONNECT ${destination}`
        : `invalid answer from proxy ${proxy.href} to CONNECT ${destination}: ${error.message}`,
      { proxy: proxy.href },
      { cause: error },
    );
  }
  const { status, reason } = response;
  if (status < 200 || status > 299) {
    let hint = '';
    if (status === PROXY_AUTHENTICATION_REQUIRED) {
      hint = proxy.credentials === null
        ? ' (give a user and password in the proxy URL: http://user:password@host:port)'
        : ' (the proxy refused the user name and password of the proxy URL)';
    }
    throw new ProxyError(`proxy ${proxy.href} refused to open a tunnel to ${destination}: HTTP ${status}${reason === '' ? '' : ` ${reason}`}${hint}`, {
      proxy: proxy.href,
      status,
      reason,
      responseHeaders: response.rawHeaders,
      body: response.body,
    });
  }
  if (parser.rest.length > 0) socket.unshift(parser.rest);
  return socket;
}
