/**
 * The request that asks an HTTP proxy for a tunnel (RFC 9110 §9.3.6, RFC 9112 §3.2.3): `CONNECT host:port`, with
 * `Host`, `User-Agent` and, when the proxy URL carries credentials, `Proxy-Authorization: Basic` (RFC 7617).
 * The proxy's answer is read by `ResponseParser` with `method: 'CONNECT'`, under the handshake limits.
 */
import { ConfigError } from '../errors.js';
import { headerLine } from './handshake-headers.js';

/** What a CONNECT request carries. */
export interface ConnectRequestOptions {
  /** The tunnel's destination: a host name or an IP literal (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  /** The `User-Agent` header; `null` sends none. */
  readonly userAgent: string | null;
  /** The proxy's credentials, already percent-decoded; none when `null` or absent. */
  readonly credentials?: ProxyCredentials | null;
}

/** A user name and password for a proxy (Basic for HTTP, RFC 1929 for SOCKS5). */
export interface ProxyCredentials {
  readonly username: string;
  readonly password: string;
}

/**
 * The `Proxy-Authorization` value for Basic credentials: `Basic base64(user:password)`, UTF-8 (RFC 7617 §2.1).
 * @throws ConfigError for a user name with a colon, which Basic cannot carry
 */
export function basicCredentials(credentials: ProxyCredentials): string {
  if (credentials.username.includes(':')) {
    throw new ConfigError('a proxy user name cannot contain ":" with Basic authentication (RFC 7617)', 'proxy', credentials.username);
  }
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}

/**
 * The bytes of `CONNECT host:port HTTP/1.1`. The request-target is the authority form with the port always present
 * (RFC 9112 §3.2.3), and so is `Host`, which names the same authority.
 * @throws ConfigError for a host that is not a plain host name or IP literal, or a user agent that is not printable
 */
export function buildConnectRequest(options: ConnectRequestOptions): Buffer {
  const { host, port, userAgent, credentials } = options;
  if (!/^[\x21-\x7e]+$/.test(host) || /[/?#@[\]\\]/.test(host) || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new ConfigError(`invalid tunnel destination ${JSON.stringify(`${host}:${port}`)}`, 'url', host);
  }
  const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  if (userAgent !== null) head += headerLine('User-Agent', userAgent, 'userAgentHeader');
  if (credentials !== undefined && credentials !== null) head += `Proxy-Authorization: ${basicCredentials(credentials)}\r\n`;
  return Buffer.from(`${head}\r\n`, 'latin1');
}
