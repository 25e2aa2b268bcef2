/**
 * resolveConfig(): every setting's default, the precedence option > environment > default, strict parsing of the
 * environment, the identity headers, timeouts that can be turned off, compression, and the frozen result; and
 * resolveTlsFiles(): which WEBSOCKETS_TLS_* files a server reads, and the certificate/key pair check.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  resolveConfig,
  resolveMaxRedirects,
  resolveSocketPath,
  resolveSocketPermissions,
  resolveHttp2,
  resolveTlsFiles,
  type ResolvedConfig,
  type WebSocketsOptions,
} from '../lib/config/index.js';
import { ConfigError } from '../lib/errors.js';
import { DEFAULT_IDENTITY, PACKAGE_VERSION, SETTINGS, type SettingName } from '../lib/config/settings.js';

const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** The numeric settings that resolveConfig reads from the environment, and where each lands in the result. */
const NUMERIC: ReadonlyArray<{ name: SettingName; unit: string; read: (c: ResolvedConfig) => number | null }> = [
  { name: 'maxLineLength', unit: 'bytes', read: (c) => c.limits.maxLineLength },
  { name: 'maxNumHeaders', unit: 'headers', read: (c) => c.limits.maxNumHeaders },
  { name: 'maxBodySize', unit: 'bytes', read: (c) => c.limits.maxBodySize },
  { name: 'maxMessageSize', unit: 'bytes', read: (c) => c.limits.maxMessageSize },
  { name: 'readHighWaterMark', unit: 'bytes', read: (c) => c.readHighWaterMark },
  { name: 'writeHighWaterMark', unit: 'bytes', read: (c) => c.writeHighWaterMark },
  { name: 'writeLowWaterMark', unit: 'bytes', read: (c) => c.writeLowWaterMark },
  { name: 'openTimeoutMs', unit: 'milliseconds, or off', read: (c) => c.openTimeoutMs },
  { name: 'pingIntervalMs', unit: 'milliseconds, or off', read: (c) => c.pingIntervalMs },
  { name: 'pingTimeoutMs', unit: 'milliseconds, or off', read: (c) => c.pingTimeoutMs },
  { name: 'closeTimeoutMs', unit: 'milliseconds, or off', read: (c) => c.closeTimeoutMs },
];

function envOf(name: SettingName): string {
  const env = SETTINGS[name].env;
  if (env === null) throw new Error(`${name} has no environment variable`);
  return env;
}

/** A value that passes the low <= high water mark check whichever of the two is set. */
function validValue(name: SettingName): number {
  return name === 'writeHighWaterMark' ? 65_536 : name === 'writeLowWaterMark' ? 4096 : 12_345;
}

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveConfig defaults', () => {
  it('are the documented ones (the issue and the seed fix these numbers)', () => {
    const config = resolveConfig({}, {});
    expect(config.limits).toEqual({ maxLineLength: 8192, maxNumHeaders: 128, maxBodySize: 1_048_576, maxMessageSize: 1_048_576, maxFragments: 16_384 });
    expect(config.readHighWaterMark).toBe(65_536);
    expect(config.writeHighWaterMark).toBe(32_768);
    expect(config.writeLowWaterMark).toBe(8192);
    expect(config.openTimeoutMs).toBe(10_000);
    expect(config.pingIntervalMs).toBe(20_000);
    expect(config.pingTimeoutMs).toBe(20_000);
    expect(config.closeTimeoutMs).toBe(10_000);
    expect(config.compression).toEqual({
      serverMaxWindowBits: 12,
      clientMaxWindowBits: 12,
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      memLevel: 5,
      threshold: 128,
      windowBitsSet: { server: false, client: false },
    });
    // Set explicitly, even to the default, the window bits are recorded as set (a client then offers them).
    expect(resolveConfig({ compression: { serverMaxWindowBits: 12 } }, {}).compression?.windowBitsSet).toEqual({ server: true, client: false });
  });

  it('match SETTINGS for every numeric setting', () => {
    const config = resolveConfig();
    for (const { name, read } of NUMERIC) expect([name, read(config)]).toEqual([name, SETTINGS[name].default]);
  });

  it('identify as Node.js/<node version> nestjs-websockets/<major.minor of package.json>', () => {
    const [major, minor] = packageJson.version.split('.');
    const identity = `Node.js/${process.versions.node} nestjs-websockets/${major}.${minor}`;
    expect(DEFAULT_IDENTITY).toBe(identity);
    const config = resolveConfig({}, {});
    expect(config.serverHeader).toBe(identity);
    expect(config.userAgentHeader).toBe(identity);
  });

  it('PACKAGE_VERSION is major.minor of package.json', () => {
    expect(PACKAGE_VERSION).toBe(packageJson.version.split('.').slice(0, 2).join('.'));
  });
});

describe.each(NUMERIC)('$name', ({ name, unit, read }) => {
  const env = envOf(name);
  const value = validValue(name);

  it('is read from its environment variable', () => {
    expect(read(resolveConfig({}, { [env]: String(value) }))).toBe(value);
  });

  it('an explicit option beats the environment', () => {
    expect(read(resolveConfig({ [name]: value + 1 } as WebSocketsOptions, { [env]: String(value) }))).toBe(value + 1);
  });

  it('an empty variable counts as unset', () => {
    expect(read(resolveConfig({}, { [env]: '' }))).toBe(SETTINGS[name].default);
  });

  it.each(['8k', '-1', '0', '1.5', ' 12', '12 ', '12\n', '+12', '0x10', '1e3', '١٢', '9007199254740992'])(
    'refuses %j in the variable, naming the variable and the value',
    (raw) => {
      const error = configError(() => resolveConfig({}, { [env]: raw }));
      expect(error.message).toBe(
        `${env} must be a positive integer (${unit}); got ${JSON.stringify(raw)} (option ${SETTINGS[name].option}, env ${env})`,
      );
      expect(error).toMatchObject({ code: 'WS_ERR_CONFIG', setting: SETTINGS[name].option, value: raw });
    },
  );

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])('refuses the option %p', (bad) => {
    const error = configError(() => resolveConfig({ [name]: bad } as WebSocketsOptions, {}));
    expect(error.message).toBe(
      `option ${SETTINGS[name].option} must be a positive integer (${unit}); got ${String(bad)} (option ${SETTINGS[name].option}, env ${env})`,
    );
  });

  it('refuses an option of the wrong type', () => {
    const error = configError(() => resolveConfig({ [name]: '8192' } as unknown as WebSocketsOptions, {}));
    expect(error.message).toMatch(new RegExp(`^option ${SETTINGS[name].option} must be a positive integer \\(.*\\); got "8192"`));
  });

  it('accepts 1 and the largest safe integer, from the option and from the variable', () => {
    // The water marks are checked against each other; keep the other one compatible.
    const other: WebSocketsOptions =
      name === 'writeLowWaterMark'
        ? { writeHighWaterMark: Number.MAX_SAFE_INTEGER, maxBufferedAmount: null }
        : name === 'writeHighWaterMark'
          ? { writeLowWaterMark: 1, maxBufferedAmount: null }
          : {};
    for (const n of [1, Number.MAX_SAFE_INTEGER]) {
      expect(read(resolveConfig({ ...other, [name]: n }, {}))).toBe(n);
      expect(read(resolveConfig(other, { [env]: String(n) }))).toBe(n);
    }
  });
});

describe('strict parsing of numeric variables (property)', () => {
  it('accepts exactly the strings of ASCII digits that denote a positive safe integer', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 20 }), fc.stringMatching(/^[0-9]{1,17}$/)), (raw) => {
        const valid = /^[0-9]+$/.test(raw) && Number(raw) >= 1 && Number.isSafeInteger(Number(raw));
        const run = (): unknown => resolveConfig({}, { WEBSOCKETS_MAX_LINE_LENGTH: raw });
        if (raw === '') expect(resolveConfig({}, { WEBSOCKETS_MAX_LINE_LENGTH: raw }).limits.maxLineLength).toBe(8192);
        else if (valid) expect(resolveConfig({}, { WEBSOCKETS_MAX_LINE_LENGTH: raw }).limits.maxLineLength).toBe(Number(raw));
        else expect(run).toThrow(ConfigError);
      }),
      { numRuns: 300 },
    );
  });
});

describe('timeouts', () => {
  const timeouts = NUMERIC.filter(({ name }) => name.endsWith('Ms'));

  it.each(timeouts)('$name: null turns it off, even when the variable is set', ({ name, read }) => {
    expect(read(resolveConfig({ [name]: null } as WebSocketsOptions, { [envOf(name)]: '5000' }))).toBeNull();
  });

  it.each(timeouts)('$name: off or none in the variable turns it off (any case)', ({ name, read }) => {
    for (const raw of ['off', 'OFF', 'none', 'None']) expect(read(resolveConfig({}, { [envOf(name)]: raw }))).toBeNull();
  });

  it.each(timeouts)('$name: an explicit number beats off in the variable', ({ name, read }) => {
    expect(read(resolveConfig({ [name]: 250 } as WebSocketsOptions, { [envOf(name)]: 'off' }))).toBe(250);
  });

  it('0 never means "no timeout"', () => {
    expect(() => resolveConfig({ closeTimeoutMs: 0 }, {})).toThrow(
      'option closeTimeoutMs must be a positive integer (milliseconds, or off); got 0 (option closeTimeoutMs, env WEBSOCKETS_CLOSE_TIMEOUT_MS)',
    );
    expect(() => resolveConfig({}, { WEBSOCKETS_PING_INTERVAL_MS: 'never' })).toThrow(
      'WEBSOCKETS_PING_INTERVAL_MS must be a positive integer (milliseconds, or off); got "never"',
    );
  });
});

describe.each([
  { name: 'serverHeader' as const, env: 'WEBSOCKETS_SERVER' },
  { name: 'userAgentHeader' as const, env: 'WEBSOCKETS_USER_AGENT' },
])('identity header $name', ({ name, env }) => {
  it(`comes from ${env} when the option is absent`, () => {
    expect(resolveConfig({}, { [env]: 'edge/1.0' })[name]).toBe('edge/1.0');
  });

  it(`an empty ${env} removes it`, () => {
    expect(resolveConfig({}, { [env]: '' })[name]).toBeNull();
  });

  it(`null in the option removes it, even when ${env} is set`, () => {
    expect(resolveConfig({ [name]: null }, { [env]: 'edge/1.0' })[name]).toBeNull();
  });

  it('an explicit option beats the variable', () => {
    expect(resolveConfig({ [name]: 'mine/2' }, { [env]: 'edge/1.0' })[name]).toBe('mine/2');
  });

  it('an empty option removes it', () => {
    expect(resolveConfig({ [name]: '' }, { [env]: 'edge/1.0' })[name]).toBeNull();
  });

  it('refuses a value that could split the header, from the option or the variable', () => {
    expect(() => resolveConfig({ [name]: 'a\r\nX-Evil: 1' }, {})).toThrow(ConfigError);
    const error = configError(() => resolveConfig({}, { [env]: 'a\nb' }));
    expect(error.message).toMatch(new RegExp(`^${env} must be `));
    expect(error.value).toBe('a\nb');
  });

  it('the other header is unaffected', () => {
    const other = name === 'serverHeader' ? 'userAgentHeader' : 'serverHeader';
    expect(resolveConfig({ [name]: null }, { [env]: '' })[other]).toBe(DEFAULT_IDENTITY);
  });
});

describe('compression', () => {
  it('false turns it off, even when the variable says on', () => {
    expect(resolveConfig({ compression: false }, { WEBSOCKETS_COMPRESSION: 'on' }).compression).toBeNull();
  });

  it.each(['off', 'OFF', 'false', '0', 'no'])('WEBSOCKETS_COMPRESSION=%s turns it off', (raw) => {
    expect(resolveConfig({}, { WEBSOCKETS_COMPRESSION: raw }).compression).toBeNull();
  });

  it.each(['on', 'true', '1', 'yes', ''])('WEBSOCKETS_COMPRESSION=%j keeps the defaults', (raw) => {
    expect(resolveConfig({}, { WEBSOCKETS_COMPRESSION: raw }).compression).toEqual(resolveConfig().compression);
  });

  it('an explicit option beats WEBSOCKETS_COMPRESSION=off', () => {
    expect(resolveConfig({ compression: true }, { WEBSOCKETS_COMPRESSION: 'off' }).compression).not.toBeNull();
    expect(resolveConfig({ compression: { memLevel: 8 } }, { WEBSOCKETS_COMPRESSION: 'off' }).compression?.memLevel).toBe(8);
  });

  it('refuses any other value of WEBSOCKETS_COMPRESSION, naming it', () => {
    expect(() => resolveConfig({}, { WEBSOCKETS_COMPRESSION: 'maybe' })).toThrow(
      'WEBSOCKETS_COMPRESSION must be "on" or "off"; got "maybe" (option compression, env WEBSOCKETS_COMPRESSION)',
    );
  });

  it('refuses an option that is neither a boolean nor an object', () => {
    for (const bad of [null, 'off', 1]) {
      expect(() => resolveConfig({ compression: bad } as unknown as WebSocketsOptions, {})).toThrow(ConfigError);
    }
  });

  it.each(['serverMaxWindowBits', 'clientMaxWindowBits'] as const)('%s: 8 and 15 pass, 7 and 16 fail', (key) => {
    expect(resolveConfig({ compression: { [key]: 8 } }).compression?.[key]).toBe(8);
    expect(resolveConfig({ compression: { [key]: 15 } }).compression?.[key]).toBe(15);
    for (const bad of [7, 16, 12.5]) {
      expect(() => resolveConfig({ compression: { [key]: bad } })).toThrow(
        `must be an integer from 8 to 15 (window bits); got ${bad}`,
      );
    }
  });

  it('memLevel: 1 and 9 pass, 0 and 10 fail', () => {
    expect(resolveConfig({ compression: { memLevel: 1 } }).compression?.memLevel).toBe(1);
    expect(resolveConfig({ compression: { memLevel: 9 } }).compression?.memLevel).toBe(9);
    expect(() => resolveConfig({ compression: { memLevel: 0 } })).toThrow('must be an integer from 1 to 9 (zlib memLevel); got 0');
    expect(() => resolveConfig({ compression: { memLevel: 10 } })).toThrow('must be an integer from 1 to 9 (zlib memLevel); got 10');
  });

  it('threshold: 0 compresses everything; negative or fractional fails', () => {
    expect(resolveConfig({ compression: { threshold: 0 } }).compression?.threshold).toBe(0);
    expect(resolveConfig({ compression: { threshold: 1 } }).compression?.threshold).toBe(1);
    expect(() => resolveConfig({ compression: { threshold: -1 } })).toThrow(ConfigError);
    expect(() => resolveConfig({ compression: { threshold: 0.5 } })).toThrow(ConfigError);
  });

  it('context takeover flags must be booleans', () => {
    const c = resolveConfig({ compression: { serverNoContextTakeover: true, clientNoContextTakeover: true } }).compression;
    expect([c?.serverNoContextTakeover, c?.clientNoContextTakeover]).toEqual([true, true]);
    expect(() => resolveConfig({ compression: { serverNoContextTakeover: 'yes' } } as unknown as WebSocketsOptions)).toThrow(
      'option compression.serverNoContextTakeover must be a boolean; got yes',
    );
  });
});

describe('write water marks', () => {
  it('low equal to high passes; low one over high fails with both values', () => {
    const equal = resolveConfig({ writeHighWaterMark: 8192, writeLowWaterMark: 8192 });
    expect([equal.writeLowWaterMark, equal.writeHighWaterMark]).toEqual([8192, 8192]);
    const error = configError(() => resolveConfig({ writeHighWaterMark: 8192, writeLowWaterMark: 8193 }));
    expect(error.message).toBe('writeLowWaterMark (8193) must not exceed writeHighWaterMark (8192)');
  });

  it('the check also applies to values from the environment', () => {
    expect(() => resolveConfig({}, { WEBSOCKETS_WRITE_HIGH_WATER_MARK: '4096' })).toThrow(
      'writeLowWaterMark (8192) must not exceed writeHighWaterMark (4096)',
    );
  });
});

describe('the result', () => {
  it('is frozen, down to the limits and the compression settings', () => {
    const config = resolveConfig();
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.limits)).toBe(true);
    expect(Object.isFrozen(config.compression)).toBe(true);
    expect(() => {
      (config.limits as { maxLineLength: number }).maxLineLength = 1;
    }).toThrow(TypeError);
  });

  it('reads only the environment it is given (never process.env)', () => {
    const saved = process.env.WEBSOCKETS_MAX_LINE_LENGTH;
    process.env.WEBSOCKETS_MAX_LINE_LENGTH = '8k';
    try {
      expect(resolveConfig({}, {}).limits.maxLineLength).toBe(8192);
    } finally {
      if (saved === undefined) delete process.env.WEBSOCKETS_MAX_LINE_LENGTH;
      else process.env.WEBSOCKETS_MAX_LINE_LENGTH = saved;
    }
  });
});

describe('client and Unix socket settings', () => {
  it('resolve maxRedirects from the option, then WEBSOCKETS_MAX_REDIRECTS, then 10; 0 is allowed, a negative is not', () => {
    expect(resolveMaxRedirects(undefined, {})).toBe(10);
    expect(resolveMaxRedirects(undefined, { WEBSOCKETS_MAX_REDIRECTS: '0' })).toBe(0);
    expect(resolveMaxRedirects(3, { WEBSOCKETS_MAX_REDIRECTS: '0' })).toBe(3);
    expect(() => resolveMaxRedirects(-1, {})).toThrow(
      'option maxRedirects must be a non-negative integer (redirects); got -1 (option maxRedirects, env WEBSOCKETS_MAX_REDIRECTS)',
    );
  });

  it('resolve the socket path (option, then WEBSOCKETS_SOCKET_PATH) and its permissions (octal in the variable)', () => {
    expect(resolveSocketPath(undefined, {})).toBeNull();
    expect(resolveSocketPath(undefined, { WEBSOCKETS_SOCKET_PATH: '/run/a.sock' })).toBe('/run/a.sock');
    expect(resolveSocketPath('/run/b.sock', { WEBSOCKETS_SOCKET_PATH: '/run/a.sock' })).toBe('/run/b.sock');
    expect(() => resolveSocketPath('', {})).toThrow('option socketPath must be a file path');
    expect(resolveSocketPermissions(undefined, {})).toBeNull();
    expect(resolveSocketPermissions(undefined, { WEBSOCKETS_SOCKET_PERMISSIONS: '0660' })).toBe(0o660);
    expect(resolveSocketPermissions(0o600, { WEBSOCKETS_SOCKET_PERMISSIONS: '660' })).toBe(0o600);
    expect(() => resolveSocketPermissions(undefined, { WEBSOCKETS_SOCKET_PERMISSIONS: '666x' })).toThrow(ConfigError);
    expect(() => resolveSocketPermissions('660', {})).toThrow('option socketPermissions must be permission bits from 0 to 0o777');
  });
});

describe('resolveHttp2 (HTTP/2 on a server\'s own port)', () => {
  it('reads the option, then WEBSOCKETS_HTTP2 (on/off words), then off; it needs TLS', () => {
    expect(resolveHttp2(undefined, {}, true)).toBe(false);
    expect(resolveHttp2(undefined, { WEBSOCKETS_HTTP2: 'on' }, true)).toBe(true);
    expect(resolveHttp2(undefined, { WEBSOCKETS_HTTP2: 'TRUE' }, true)).toBe(true);
    expect(resolveHttp2(undefined, { WEBSOCKETS_HTTP2: 'off' }, false)).toBe(false);
    expect(resolveHttp2(undefined, { WEBSOCKETS_HTTP2: '' }, false)).toBe(false);
    expect(resolveHttp2(false, { WEBSOCKETS_HTTP2: 'on' }, false)).toBe(false);
    expect(resolveHttp2(true, {}, true)).toBe(true);
    expect(() => resolveHttp2('yes', {}, true)).toThrow('option http2 must be a boolean; got "yes" (option http2, env WEBSOCKETS_HTTP2)');
    expect(() => resolveHttp2(undefined, { WEBSOCKETS_HTTP2: '2' }, true)).toThrow('WEBSOCKETS_HTTP2 must be "on" or "off"; got "2" (option http2, env WEBSOCKETS_HTTP2)');
    expect(() => resolveHttp2(true, {}, false)).toThrow(ConfigError);
    expect(() => resolveHttp2(undefined, { WEBSOCKETS_HTTP2: '1' }, false)).toThrow(
      'WEBSOCKETS_HTTP2 is on but the server has no TLS: browsers speak HTTP/2 over TLS only; give the tls option (or ' +
        'WEBSOCKETS_TLS_CERT and WEBSOCKETS_TLS_KEY), or turn http2 off (option http2, env WEBSOCKETS_HTTP2)',
    );
  });
});

describe('resolveTlsFiles (which WEBSOCKETS_TLS_* files a server reads)', () => {
  const env = { WEBSOCKETS_TLS_CERT: '/c.pem', WEBSOCKETS_TLS_KEY: '/k.pem', WEBSOCKETS_TLS_CA: '/ca.pem' };

  it('names the file of each field the option leaves out; the option wins field by field; empty means unset', () => {
    expect(resolveTlsFiles(undefined, {})).toEqual({});
    expect(resolveTlsFiles(undefined, env)).toEqual({ cert: '/c.pem', key: '/k.pem', ca: '/ca.pem' });
    expect(resolveTlsFiles({ cert: 'PEM', key: 'PEM' }, env)).toEqual({ ca: '/ca.pem' });
    expect(resolveTlsFiles({ ca: 'PEM' }, { ...env, WEBSOCKETS_TLS_CERT: '', WEBSOCKETS_TLS_KEY: '' })).toEqual({});
    expect(resolveTlsFiles(undefined, { WEBSOCKETS_TLS_CA: '/ca.pem' })).toEqual({ ca: '/ca.pem' });
    expect(Object.isFrozen(resolveTlsFiles(undefined, env))).toBe(true);
  });

  it('refuses a certificate without its key and a key without its certificate, from the option or a variable, naming both', () => {
    const certOnly =
      'a TLS certificate is configured without its key; set option tls.key, env WEBSOCKETS_TLS_KEY as well, or remove option tls.cert, env WEBSOCKETS_TLS_CERT';
    const keyOnly =
      'a TLS key is configured without its certificate; set option tls.cert, env WEBSOCKETS_TLS_CERT as well, or remove option tls.key, env WEBSOCKETS_TLS_KEY';
    expect(configError(() => resolveTlsFiles(undefined, { WEBSOCKETS_TLS_CERT: '/c.pem' })).message).toBe(certOnly);
    expect(configError(() => resolveTlsFiles({ cert: 'PEM' }, {})).message).toBe(certOnly);
    expect(configError(() => resolveTlsFiles(undefined, { WEBSOCKETS_TLS_KEY: '/k.pem', WEBSOCKETS_TLS_CERT: '' })).message).toBe(keyOnly);
    expect(configError(() => resolveTlsFiles({ key: 'PEM' }, {})).setting).toBe('tls.cert');
    // One from the option and the other from the variable make a pair.
    expect(resolveTlsFiles({ cert: 'PEM' }, { WEBSOCKETS_TLS_KEY: '/k.pem' })).toEqual({ key: '/k.pem' });
  });
});
