/**
 * WebSocketsModule: forRoot, forRootAsync (useFactory, useClass, useExisting, @nestjs/config's registerAs) and the
 * environment all resolve to the same config; start-up validation names the option, the value and the fix; TLS
 * files from WEBSOCKETS_TLS_* are read and checked at start-up.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { ConfigModule, registerAs } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../../lib/config/index.js';
import { ConfigError } from '../../lib/errors.js';
import { WebSocketsModule } from '../../lib/nest/websockets.module.js';
import { WebSocketsService } from '../../lib/nest/websockets.service.js';
import { resolveWebSocketsOptions } from '../../lib/nest/websockets-options.js';
import { resolveTlsOptions, websocketsHttpsOptions } from '../../lib/nest/tls-options.js';
import type { WebSocketsModuleOptions } from '../../lib/nest/websockets-options.interface.js';
import { describeWithPeer } from '../support/peers.js';
import { makeTestCertificates, type TestCertificates } from '../support/certs.js';

const OPTIONS: WebSocketsModuleOptions = {
  maxMessageSize: 65_536,
  compression: false,
  pingIntervalMs: null,
  subprotocols: ['chat.v1'],
  invalidMessages: 'ignore',
  env: {},
};

async function serviceOf(imports: Parameters<typeof Test.createTestingModule>[0]['imports']): Promise<WebSocketsService> {
  const moduleRef = await Test.createTestingModule({ imports }).compile();
  const service = moduleRef.get(WebSocketsService);
  await moduleRef.close();
  return service;
}

@Injectable()
class OptionsFactory {
  create(): WebSocketsModuleOptions {
    return OPTIONS;
  }
}

@Module({ providers: [OptionsFactory], exports: [OptionsFactory] })
class OptionsFactoryModule {}

describe('WebSocketsModule options', () => {
  it('resolves forRoot, forRootAsync (useFactory, useClass, useExisting) and registerAs().asProvider() to the same config', async () => {
    const websocketsConfig = registerAs('websockets', (): WebSocketsModuleOptions => OPTIONS);
    const services = await Promise.all([
      serviceOf([WebSocketsModule.forRoot(OPTIONS)]),
      serviceOf([WebSocketsModule.forRootAsync({ useFactory: () => OPTIONS })]),
      serviceOf([WebSocketsModule.forRootAsync({ useFactory: async () => OPTIONS })]),
      serviceOf([WebSocketsModule.forRootAsync({ useClass: OptionsFactory })]),
      serviceOf([WebSocketsModule.forRootAsync({ imports: [OptionsFactoryModule], useExisting: OptionsFactory })]),
      serviceOf([ConfigModule.forRoot({ ignoreEnvFile: true }), WebSocketsModule.forRootAsync(websocketsConfig.asProvider())]),
    ]);
    const expected = resolveConfig(OPTIONS, {});
    expect(expected.limits.maxMessageSize).toBe(65_536);
    expect(expected.compression).toBeNull();
    for (const service of services) {
      expect(service.options.config).toEqual(expected);
      expect(service.options.raw.subprotocols).toEqual(['chat.v1']);
      expect(service.options.raw.invalidMessages).toBe('ignore');
      expect(service.options.tls).toBeNull();
      expect(service.options.host).toBeNull();
    }
  });

  it('lets an explicit option win over the environment, and the environment over the default', () => {
    const env = { WEBSOCKETS_MAX_MESSAGE_SIZE: '4096', WEBSOCKETS_CLOSE_TIMEOUT_MS: '250', WEBSOCKETS_HOST: '127.0.0.1' };
    const fromEnv = resolveWebSocketsOptions({}, env);
    expect(fromEnv.config.limits.maxMessageSize).toBe(4096);
    expect(fromEnv.config.closeTimeoutMs).toBe(250);
    expect(fromEnv.host).toBe('127.0.0.1');
    const explicit = resolveWebSocketsOptions({ maxMessageSize: 1000, host: '::1' }, env);
    expect(explicit.config.limits.maxMessageSize).toBe(1000);
    expect(explicit.host).toBe('::1');
    expect(resolveWebSocketsOptions({}, {}).config.limits.maxMessageSize).toBe(1_048_576);
  });

  it('reads the environment given as the env option instead of process.env', async () => {
    const service = await serviceOf([WebSocketsModule.forRoot({ env: { WEBSOCKETS_MAX_MESSAGE_SIZE: '2048' } })]);
    expect(service.options.config.limits.maxMessageSize).toBe(2048);
  });

  it('makes WebSocketsService available to every module with isGlobal', async () => {
    @Injectable()
    class Consumer {
      constructor(readonly websockets: WebSocketsService) {}
    }
    @Module({ providers: [Consumer] })
    class FeatureModule {}
    const moduleRef = await Test.createTestingModule({
      imports: [WebSocketsModule.forRoot({ isGlobal: true, maxMessageSize: 777, env: {} }), FeatureModule],
    }).compile();
    expect(moduleRef.get(Consumer).websockets.options.config.limits.maxMessageSize).toBe(777);
    await moduleRef.close();
  });

  it('does not leak isGlobal into the options', async () => {
    const service = await serviceOf([WebSocketsModule.forRoot({ isGlobal: true, env: {} })]);
    expect(Object.keys(service.options.raw)).toEqual(['env']);
  });
});

describe('start-up validation', () => {
  async function startupError(options: WebSocketsModuleOptions | (() => Promise<unknown>)): Promise<Error> {
    const module =
      typeof options === 'function'
        ? WebSocketsModule.forRootAsync({ useFactory: options as () => Promise<WebSocketsModuleOptions> })
        : WebSocketsModule.forRoot(options);
    const failure = await Test.createTestingModule({ imports: [module] })
      .compile()
      .then(
        () => new Error('compiled'),
        (error: unknown) => error as Error,
      );
    return failure;
  }

  it('names the option, the value and what is expected for a bad value', async () => {
    const error = await startupError({ maxMessageSize: -1, env: {} });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe(
      'option maxMessageSize must be a positive integer (bytes); got -1 (option maxMessageSize, env WEBSOCKETS_MAX_MESSAGE_SIZE)',
    );
  });

  it('names the variable for a bad environment value', async () => {
    const error = await startupError({ env: { WEBSOCKETS_MAX_LINE_LENGTH: '8k' } });
    expect(error.message).toBe(
      'WEBSOCKETS_MAX_LINE_LENGTH must be a positive integer (bytes); got "8k" (option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH)',
    );
  });

  it('fails the same way through forRootAsync', async () => {
    const error = await startupError(async () => ({ invalidMessages: 'drop', env: {} }));
    expect(error.message).toBe('WebSocketsModule option invalidMessages must be one of "exception", "ignore", "close"; got "drop"');
  });

  it('suggests the closest name for a misspelt option', async () => {
    const error = await startupError({ maxMesageSize: 10, env: {} } as WebSocketsModuleOptions);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^WebSocketsModule has an unknown option maxMesageSize; did you mean maxMessageSize\? \(the options are: /);
  });

  it('checks the Nest-only options', () => {
    const check = (options: Record<string, unknown>): string => {
      try {
        resolveWebSocketsOptions({ env: {}, ...options } as WebSocketsModuleOptions, {});
      } catch (error) {
        return (error as Error).message;
      }
      return 'no error';
    };
    expect(check({ subprotocols: ['chat v1'] })).toBe(
      'WebSocketsModule option subprotocols must be an array of tokens (letters, digits and !#$%&\'*+-.^_`|~); got "chat v1"',
    );
    expect(check({ allowedOrigins: 'https://example.com' })).toBe(
      'WebSocketsModule option allowedOrigins must be an array of origins (strings such as "https://example.com", or RegExps); got "https://example.com"',
    );
    expect(check({ handshakeGuards: [42] })).toBe(
      'WebSocketsModule option handshakeGuards must be an array of guard classes or objects with a canActivate() method; got 42',
    );
    expect(check({ messageParser: 'json' })).toBe('WebSocketsModule option messageParser must be a function (data, isBinary) => { event, data, id? }; got "json"');
    expect(check({ host: '' })).toBe('WebSocketsModule option host must be a non-empty string (an IP address or a host name); got ""');
    expect(check({ broadcastBus: {} })).toBe('WebSocketsModule option broadcastBus must be an object with publish() and subscribe() (a BroadcastBus); got an object');
    expect(check({ allowMissingOrigin: 'yes' })).toBe('WebSocketsModule option allowMissingOrigin must be true or false; got "yes"');
    expect(check({ subprotocols: ['chat.v1'], allowedOrigins: [/^https:\/\/.*\.example$/, 'https://a.example'] })).toBe('no error');
  });
});

describe('TLS from the environment', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'nest-tls-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is off when nothing is configured, and a CA alone does not turn it on', () => {
    expect(resolveTlsOptions(undefined, {})).toBeNull();
    const ca = path.join(dir, 'ca-only.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
    expect(resolveTlsOptions(undefined, { WEBSOCKETS_TLS_CA: ca })).toBeNull();
    expect(websocketsHttpsOptions(undefined, {})).toBeUndefined();
  });

  it('names the variable, the path and the fix for a missing file', () => {
    const missing = path.join(dir, 'nope.pem');
    expect(() => resolveTlsOptions(undefined, { WEBSOCKETS_TLS_CERT: missing, WEBSOCKETS_TLS_KEY: missing })).toThrow(
      `WEBSOCKETS_TLS_CERT names a file that cannot be read: ${JSON.stringify(missing)} (ENOENT: no such file or directory, open '${missing}'); ` +
        'set it to the path of a readable PEM file, or unset it (option tls.cert, env WEBSOCKETS_TLS_CERT)',
    );
  });

  it('refuses a file that is not PEM', () => {
    const notPem = path.join(dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    const pem = path.join(dir, 'looks-like.pem');
    writeFileSync(pem, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
    expect(() => resolveTlsOptions(undefined, { WEBSOCKETS_TLS_CERT: pem, WEBSOCKETS_TLS_KEY: notPem })).toThrow(
      `WEBSOCKETS_TLS_KEY names a file that is not PEM: ${JSON.stringify(notPem)} has no "-----BEGIN" line; give the path of a PEM file (option tls.key, env WEBSOCKETS_TLS_KEY)`,
    );
  });

  describeWithPeer('openssl', 'with real certificates', () => {
    let certs: TestCertificates;
    beforeAll(async () => {
      certs = await makeTestCertificates();
    });

    it('reads the certificate and key files into the options and httpsOptions()', async () => {
      const env = { WEBSOCKETS_TLS_CERT: certs.server.certFile, WEBSOCKETS_TLS_KEY: certs.server.keyFile, WEBSOCKETS_TLS_CA: certs.ca.certFile };
      const resolved = resolveTlsOptions({ minVersion: 'TLSv1.3' }, env);
      expect(String(resolved?.cert)).toBe(certs.server.cert);
      expect(String(resolved?.key)).toBe(certs.server.key);
      expect(String(resolved?.ca)).toBe(certs.ca.cert);
      expect(resolved?.minVersion).toBe('TLSv1.3');
      const https = WebSocketsModule.httpsOptions(undefined, env);
      expect(String(https?.cert)).toBe(certs.server.cert);
      const service = await serviceOf([WebSocketsModule.forRoot({ env })]);
      expect(String(service.httpsOptions()?.key)).toBe(certs.server.key);
    });

    it('lets the option win over the variable', () => {
      const resolved = resolveTlsOptions(
        { cert: certs.untrusted.cert, key: certs.untrusted.key },
        { WEBSOCKETS_TLS_CERT: certs.server.certFile, WEBSOCKETS_TLS_KEY: certs.server.keyFile },
      );
      expect(resolved?.cert).toBe(certs.untrusted.cert);
    });

    it('refuses a certificate without its key', () => {
      expect(() => resolveTlsOptions(undefined, { WEBSOCKETS_TLS_CERT: certs.server.certFile })).toThrow(
        'a TLS certificate is configured without its key; set option tls.key, env WEBSOCKETS_TLS_KEY as well, or remove option tls.cert, env WEBSOCKETS_TLS_CERT',
      );
    });

    it('refuses a key that does not match the certificate, at start-up', async () => {
      const env = { WEBSOCKETS_TLS_CERT: certs.server.certFile, WEBSOCKETS_TLS_KEY: certs.untrusted.keyFile };
      const error = await Test.createTestingModule({ imports: [WebSocketsModule.forRoot({ env })] })
        .compile()
        .then(
          () => undefined,
          (failure: unknown) => failure as Error,
        );
      expect(error).toBeInstanceOf(ConfigError);
      expect(error?.message).toMatch(
        /^the TLS key and certificate are not usable: .*key values mismatch.*; check that WEBSOCKETS_TLS_KEY \(or option tls.key\) is the private key of WEBSOCKETS_TLS_CERT/,
      );
    });
  });
});
