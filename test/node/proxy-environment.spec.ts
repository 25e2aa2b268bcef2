/**
 * Which proxy a connection uses, from literal environments (no network: the choice is a pure function of the URL,
 * the options and the variables): the precedence of the variables by scheme, lower case over upper case, CGI's
 * HTTP_PROXY, loopback never proxied from the environment, NO_PROXY's names, domains, IPs, CIDR ranges, ports and
 * `*`, the `proxy` and `noProxy` options, and the checks on proxy URLs.
 */
import { describe, expect, it } from '@jest/globals';
import { parseProxyUrl, resolveProxy, type Environment, type ProxyOptions } from '../../lib/config/index.js';
import { ConfigError } from '../../lib/errors.js';
import { bypasses, isLoopback, proxyFor } from '../../lib/node/proxy-environment.js';

/** The proxy's href for `url`, or `null` for a direct connection. */
function chosen(url: string, env: Environment, options: ProxyOptions = {}): string | null {
  const parsed = new URL(url);
  const secure = parsed.protocol === 'wss:';
  const port = parsed.port === '' ? (secure ? 443 : 80) : Number(parsed.port);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return proxyFor(resolveProxy(options, env), { host, port, secure })?.href ?? null;
}

describe('the proxy variables', () => {
  const ALL = {
    WSS_PROXY: 'http://wss.proxy:1',
    WS_PROXY: 'http://ws.proxy:2',
    HTTPS_PROXY: 'http://https.proxy:3',
    HTTP_PROXY: 'http://http.proxy:4',
    ALL_PROXY: 'socks5h://all.proxy:5',
  };

  it('are read by scheme: WSS_PROXY or WS_PROXY, then HTTPS_PROXY, then HTTP_PROXY (ws only), then ALL_PROXY', () => {
    expect(chosen('wss://example.com/', ALL)).toBe('http://wss.proxy:1');
    expect(chosen('ws://example.com/', ALL)).toBe('http://ws.proxy:2');
    const { WSS_PROXY: _a, WS_PROXY: _b, ...https } = ALL;
    expect(chosen('wss://example.com/', https)).toBe('http://https.proxy:3');
    // RFC 6455 §4.1: ws prefers the proxy for HTTPS too (it tunnels with CONNECT).
    expect(chosen('ws://example.com/', https)).toBe('http://https.proxy:3');
    const { HTTPS_PROXY: _c, ...http } = https;
    expect(chosen('ws://example.com/', http)).toBe('http://http.proxy:4');
    // HTTP_PROXY is for plain connections only, as everywhere else.
    expect(chosen('wss://example.com/', http)).toBe('socks5h://all.proxy:5');
    expect(chosen('wss://example.com/', {})).toBeNull();
  });

  it('are read in lower case first; an empty lower-case variable hides the upper-case one', () => {
    expect(chosen('ws://example.com/', { ws_proxy: 'http://lower:1', WS_PROXY: 'http://upper:2' })).toBe('http://lower:1');
    expect(chosen('ws://example.com/', { ws_proxy: '', WS_PROXY: 'http://upper:2', http_proxy: 'http://next:3' })).toBe('http://next:3');
    expect(chosen('ws://example.com/', { WS_PROXY: '  ', HTTP_PROXY: 'http://next:3' })).toBe('http://next:3');
  });

  it('ignore HTTP_PROXY under CGI, where it can come from a request header (httpoxy), but not http_proxy', () => {
    expect(chosen('ws://example.com/', { REQUEST_METHOD: 'GET', HTTP_PROXY: 'http://attacker:1' })).toBeNull();
    expect(chosen('ws://example.com/', { REQUEST_METHOD: 'GET', http_proxy: 'http://admin:1' })).toBe('http://admin:1');
  });

  it('are never used for loopback, whatever NO_PROXY says; an explicit proxy is', () => {
    for (const url of ['ws://localhost/', 'ws://LOCALHOST.:8080/', 'ws://app.localhost/', 'ws://127.0.0.1/', 'ws://127.9.9.9/',
      'ws://[::1]/', 'ws://[::ffff:127.0.0.1]/', 'ws://0.0.0.0/', 'wss://[::]/']) {
      expect([url, chosen(url, ALL)]).toEqual([url, null]);
      expect([url, chosen(url, {}, { proxy: 'http://explicit:8' })]).toEqual([url, 'http://explicit:8']);
    }
    expect(isLoopback('localhost.example.com')).toBe(false);
    expect(isLoopback('128.0.0.1')).toBe(false);
    expect(isLoopback('::2')).toBe(false);
  });

  it('are ignored with proxy: null, and overridden by an explicit proxy, NO_PROXY included', () => {
    expect(chosen('ws://example.com/', ALL, { proxy: null })).toBeNull();
    expect(chosen('ws://example.com/', { ...ALL, NO_PROXY: '*' }, { proxy: 'socks5://explicit' })).toBe('socks5://explicit:1080');
  });
});

describe('NO_PROXY', () => {
  const env = (noProxy: string): Environment => ({ HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: noProxy });

  it.each([
    // [entry list, URL, bypassed]
    ['*', 'wss://anything.example/', true],
    ['example.com', 'wss://example.com/', true],
    ['example.com', 'wss://ws.example.com/', true],
    ['example.com', 'wss://notexample.com/', false],
    ['.example.com', 'wss://example.com/', true],
    ['.example.com', 'wss://a.b.example.com/', true],
    ['*.example.com', 'wss://a.example.com/', true],
    ['EXAMPLE.com', 'wss://Example.COM./', true],
    ['example.com:8443', 'wss://example.com:8443/', true],
    ['example.com:8443', 'wss://example.com/', false],
    ['example.com:443', 'wss://example.com/', true],
    ['other.test, example.com', 'ws://example.com/', true],
    ['other.test example.com', 'ws://example.com/', true],
    ['10.1.2.3', 'ws://10.1.2.3/', true],
    ['10.1.2.3', 'ws://10.1.2.4/', false],
    ['10.0.0.0/8', 'ws://10.200.0.1:8080/', true],
    ['10.0.0.0/8', 'ws://11.0.0.1/', false],
    ['10.0.0.0/8', 'ws://ten.example/', false],
    ['fd00::/8', 'ws://[fd12::1]/', true],
    ['[fd00::1]:8080', 'ws://[fd00::1]:8080/', true],
    ['[fd00::1]:8080', 'ws://[fd00::1]:9090/', false],
    ['fd00::1', 'ws://[fd00:0::1]/', true],
    ['10.0.0.0/33', 'ws://10.0.0.1/', false],
    ['10.0.0.0/x', 'ws://10.0.0.1/', false],
    ['example.com', 'ws://10.0.0.1/', false],
    ['*', 'ws://[2001:db8::1]/', true],
    ['', 'ws://example.com/', false],
  ])('%j bypasses %s: %s', (list, url, bypassed) => {
    expect(chosen(url, env(list))).toBe(bypassed ? null : 'http://proxy:3128');
  });

  it('is read in lower case first, and the noProxy option replaces it', () => {
    expect(chosen('ws://a.test/', { ...env('b.test'), no_proxy: 'a.test' })).toBeNull();
    expect(chosen('ws://a.test/', env('a.test'), { noProxy: 'b.test' })).toBe('http://proxy:3128');
    expect(chosen('ws://b.test/', env(''), { noProxy: ['a.test', 'b.test'] })).toBeNull();
    expect(() => resolveProxy({ noProxy: 42 as unknown as string }, {})).toThrow(ConfigError);
    expect(bypasses(['*.'], 'example.com', 80)).toBe(false);
  });
});

describe('proxy URLs', () => {
  it('take credentials, percent-decoded, and default ports by scheme; no scheme means http', () => {
    expect(parseProxyUrl('http://u%40x:p%3Aw@Proxy.Example:3128/', 'option proxy')).toEqual({
      scheme: 'http', host: 'proxy.example', port: 3128, credentials: { username: 'u@x', password: 'p:w' }, href: 'http://proxy.example:3128',
    });
    expect(parseProxyUrl('https://proxy.example', 'x')).toMatchObject({ port: 443, credentials: null });
    expect(parseProxyUrl('socks5://[::1]', 'x')).toMatchObject({ scheme: 'socks5', host: '::1', port: 1080, href: 'socks5://[::1]:1080' });
    expect(parseProxyUrl('socks5h://PROXY', 'x')).toMatchObject({ host: 'proxy', port: 1080 });
    expect(parseProxyUrl('proxy.example:8080', 'HTTP_PROXY')).toMatchObject({ scheme: 'http', host: 'proxy.example', port: 8080 });
    expect(parseProxyUrl(new URL('http://p:1'), 'x').href).toBe('http://p:1');
  });

  it.each([
    ['ftp://proxy', 'scheme ftp is not supported'],
    ['socks4://proxy', 'scheme socks4 is not supported'],
    ['http://proxy/path', 'a proxy URL has no path, query or fragment'],
    ['http://proxy/?q', 'a proxy URL has no path, query or fragment'],
    ['http://proxy/#f', 'a proxy URL has no path, query or fragment'],
    ['http://', 'not a URL'],
    ['socks5:///', 'no host'],
    ['http://u:%zz@proxy', 'bad percent-encoding in the credentials'],
  ])('refuse %s (%s), naming where it came from without the password', (value, why) => {
    let error: unknown;
    try {
      parseProxyUrl(value, 'HTTPS_PROXY');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(new RegExp(`^HTTPS_PROXY must be a proxy URL.*\\(${why.replace(/[()?.]/g, '\\$&')}\\)$`));
    expect((error as Error).message).not.toContain('%zz');
  });

  it('refuse an option that is not a string or URL', () => {
    expect(() => resolveProxy({ proxy: 8080 as unknown as string }, {})).toThrow('option proxy must be a proxy URL');
  });
});
