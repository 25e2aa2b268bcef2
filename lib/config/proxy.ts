/**
 * The client's proxy: the `proxy` option, else the environment's `*_PROXY` variables by scheme, with `NO_PROXY`;
 * parsed and checked here, applied to a URL by the Node layer (`proxy-environment.ts`).
 */
import { ConfigError } from '../errors.js';
import { PROXY_VARIABLES } from './settings.js';
import { invalid, type Environment } from './setting-values.js';

/** The proxy schemes the client speaks. */
export type ProxyScheme = 'http' | 'https' | 'socks5' | 'socks5h';

/** A proxy URL, parsed and checked. */
export interface ProxyUrl {
  readonly scheme: ProxyScheme;
  /** Host name or IP, without the brackets of an IPv6 literal. */
  readonly host: string;
  /** The URL's port, else 80 (http), 443 (https) or 1080 (SOCKS). */
  readonly port: number;
  /** The URL's user name and password, percent-decoded; `null` when it has none. */
  readonly credentials: { readonly username: string; readonly password: string } | null;
  /** The URL without its credentials, for messages: `socks5h://127.0.0.1:1080`. */
  readonly href: string;
}

/** Where the environment's proxy for one scheme comes from. */
export interface ProxyVariable {
  /** The variable as found (`https_proxy` or `HTTPS_PROXY`). */
  readonly name: string;
  readonly value: string;
}

/** The proxy configuration of a client, before a URL picks from it. */
export type ResolvedProxy =
  /** `proxy: null`: always connect directly. */
  | { readonly mode: 'none' }
  /** An explicit `proxy`: used for every URL, loopback included, `noProxy` ignored. */
  | { readonly mode: 'fixed'; readonly proxy: ProxyUrl }
  /** The environment: one variable per scheme (or none), and the hosts that bypass it. */
  | {
      readonly mode: 'environment';
      readonly ws: ProxyVariable | null;
      readonly wss: ProxyVariable | null;
      /** Entries of `noProxy` / NO_PROXY, split at commas and whitespace. */
      readonly noProxy: readonly string[];
    };

/** What the client's proxy settings can be. */
export interface ProxyOptions {
  /**
   * The proxy: a URL (`http://user:password@proxy:3128`, `socks5h://proxy:1080`), `null` for none, or absent to
   * follow the environment.
   */
  proxy?: string | URL | null;
  /** Hosts that bypass the environment's proxy, as NO_PROXY lists them (a string, or its entries). */
  noProxy?: string | readonly string[] | null;
}

const PROXY_DEFAULT_PORTS: Readonly<Record<ProxyScheme, number>> = { http: 80, https: 443, socks5: 1080, socks5h: 1080 };
const PROXY_URL_HINT = 'a proxy URL: http://, https://, socks5:// or socks5h://[user:password@]host[:port]';

/**
 * Parses and checks a proxy URL. A value without a scheme (`proxy.example:3128`) is taken as `http://`, as curl and
 * Go do.
 * @param where what to name in the message: `option proxy`, or the variable it came from (`HTTPS_PROXY`)
 * @throws ConfigError for an unsupported scheme, a missing host, a path, query or fragment, or bad percent-encoding
 */
export function parseProxyUrl(value: string | URL, where: string): ProxyUrl {
  const text = String(value).trim();
  const fail = (why: string): ConfigError =>
    new ConfigError(`${where} must be ${PROXY_URL_HINT}; got ${JSON.stringify(redactUrl(text))} (${why})`, 'proxy', redactUrl(text));
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw fail('not a URL');
  }
  const scheme = url.protocol.slice(0, -1);
  if (!(scheme in PROXY_DEFAULT_PORTS)) throw fail(`scheme ${scheme} is not supported`);
  const host = url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw fail('no host');
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') throw fail('a proxy URL has no path, query or fragment');
  const port = url.port === '' ? PROXY_DEFAULT_PORTS[scheme as ProxyScheme] : Number(url.port);
  let credentials: ProxyUrl['credentials'] = null;
  if (url.username !== '' || url.password !== '') {
    try {
      credentials = Object.freeze({ username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) });
    } catch {
      throw fail('bad percent-encoding in the credentials');
    }
  }
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return Object.freeze({ scheme: scheme as ProxyScheme, host, port, credentials, href: `${scheme}://${shownHost}:${port}` });
}

/** A URL with its password replaced, for messages. */
function redactUrl(text: string): string {
  return text.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
}

/** The first set variable of `names`; lower case wins, and an empty lower-case variable hides the upper-case one. */
function proxyVariable(names: readonly string[], env: Environment): ProxyVariable | null {
  for (const upper of names) {
    const lower = upper.toLowerCase();
    const lowerValue = env[lower];
    if (lowerValue !== undefined) {
      if (lowerValue.trim() !== '') return { name: lower, value: lowerValue };
      continue;
    }
    // CGI puts a request's `Proxy:` header in HTTP_PROXY (httpoxy, CVE-2016-5385): under CGI, only http_proxy counts.
    if (upper === 'HTTP_PROXY' && env.REQUEST_METHOD !== undefined) continue;
    const upperValue = env[upper];
    if (upperValue !== undefined && upperValue.trim() !== '') return { name: upper, value: upperValue };
  }
  return null;
}

/**
 * The client's proxy settings: `proxy: null` turns proxies off; an explicit `proxy` is used for every URL; otherwise
 * the environment applies: WSS_PROXY or WS_PROXY, then HTTPS_PROXY, then (ws only) HTTP_PROXY, then ALL_PROXY, each
 * also in lower case (which wins), with `noProxy` / NO_PROXY. A variable's URL is checked when a connection uses it,
 * so a bad HTTP_PROXY does not break a wss:// client that never reads it.
 * @throws ConfigError for an invalid explicit `proxy` or `noProxy`
 */
export function resolveProxy(options: ProxyOptions, env: Environment): ResolvedProxy {
  if (options.proxy === null) return Object.freeze({ mode: 'none' });
  if (options.proxy !== undefined) {
    if (typeof options.proxy !== 'string' && !(options.proxy instanceof URL)) {
      throw new ConfigError(`option proxy must be ${PROXY_URL_HINT}, or null for none; got ${String(options.proxy)}`, 'proxy', options.proxy);
    }
    return Object.freeze({ mode: 'fixed', proxy: parseProxyUrl(options.proxy, 'option proxy') });
  }
  let list: string;
  const option: unknown = options.noProxy;
  if (option !== undefined && option !== null) {
    if (typeof option === 'string') list = option;
    else if (Array.isArray(option) && option.every((entry) => typeof entry === 'string')) list = option.join(',');
    else throw invalid('noProxy', option, 'a comma-separated string or an array of host names', 'option');
  } else {
    list = env.no_proxy ?? env.NO_PROXY ?? '';
  }
  return Object.freeze({
    mode: 'environment',
    ws: proxyVariable(PROXY_VARIABLES.ws, env),
    wss: proxyVariable(PROXY_VARIABLES.wss, env),
    noProxy: Object.freeze(list.split(/[\s,]+/).filter((entry) => entry !== '')),
  });
}
