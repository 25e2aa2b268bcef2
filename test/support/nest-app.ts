/**
 * The one way the Nest tests start an app: a testing module with `WebSocketsModule.forRoot` (an empty `env`, so the
 * machine's `WEBSOCKETS_*` variables cannot change a test) and the given gateways, this package's adapter, the HTTP
 * server on an ephemeral port of 127.0.0.1. Every app started here is closed by `closeNestApps()` (call it in
 * `afterEach`), so a failing test leaves no server behind.
 */
import 'reflect-metadata';
import type { DynamicModule, INestApplication, LoggerService, NestApplicationOptions, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { WebSocketsAdapter, WebSocketsModule, type WebSocketsModuleOptions } from '../../lib/nest/index.js';

export interface NestAppSpec {
  /** Gateways (and any other providers) of the app's module. */
  readonly providers?: Type[];
  /** Module options; `env` defaults to `{}`. */
  readonly options?: WebSocketsModuleOptions;
  /** Modules to import instead of `WebSocketsModule.forRoot(options)` (the sample's `AppModule`, say). */
  readonly imports?: Array<Type | DynamicModule>;
  /** Nest's logger; `false` (silent) by default. */
  readonly logger?: LoggerService | false;
  /** Other options of `createNestApplication`. */
  readonly appOptions?: NestApplicationOptions;
}

export interface StartedNestApp {
  readonly app: INestApplication;
  readonly adapter: WebSocketsAdapter;
  /** The port of the app's HTTP server. */
  readonly port: number;
  /** `ws://127.0.0.1:<port><path>`. */
  url(path?: string): string;
}

const started = new Set<INestApplication>();

/** Adds `app` to the set; a test that closes it itself takes it off, so it is not closed twice. */
function track(app: INestApplication): INestApplication {
  started.add(app);
  const close = app.close.bind(app);
  app.close = async (): Promise<void> => {
    started.delete(app);
    await close();
  };
  return app;
}

/** Starts an app as described; it is closed by `closeNestApps()`. */
export async function startNestApp(spec: NestAppSpec = {}): Promise<StartedNestApp> {
  const moduleRef = await Test.createTestingModule({
    imports: spec.imports ?? [WebSocketsModule.forRoot({ env: {}, ...spec.options })],
    providers: spec.providers ?? [],
  }).compile();
  const app = track(moduleRef.createNestApplication({ logger: spec.logger ?? false, ...spec.appOptions }));
  const adapter = new WebSocketsAdapter(app);
  app.useWebSocketAdapter(adapter);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, adapter, port, url: (path = '') => `ws://127.0.0.1:${port}${path}` };
}

/** Has `closeNestApps()` close an app made elsewhere (one that only runs `init()`, say). */
export function trackNestApp(app: INestApplication): INestApplication {
  return track(app);
}

/** Closes every app `startNestApp` started and has not closed yet. */
export async function closeNestApps(): Promise<void> {
  await Promise.all([...started].map((app) => app.close()));
}

/** One line a `CapturingLogger` kept. */
export interface LoggedLine {
  readonly level: 'log' | 'error' | 'warn' | 'debug' | 'verbose';
  readonly message: string;
}

/** A Nest logger that keeps what the app logs: `entries` as objects, `lines` as `level: message` strings. */
export class CapturingLogger implements LoggerService {
  readonly entries: LoggedLine[] = [];

  get lines(): string[] {
    return this.entries.map(({ level, message }) => `${level}: ${message}`);
  }

  log(message: unknown): void {
    this.entries.push({ level: 'log', message: String(message) });
  }
  error(message: unknown): void {
    this.entries.push({ level: 'error', message: String(message) });
  }
  warn(message: unknown): void {
    this.entries.push({ level: 'warn', message: String(message) });
  }
  debug(message: unknown): void {
    this.entries.push({ level: 'debug', message: String(message) });
  }
  verbose(message: unknown): void {
    this.entries.push({ level: 'verbose', message: String(message) });
  }
}
