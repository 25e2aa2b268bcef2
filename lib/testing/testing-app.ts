/**
 * `startTestingApp(moduleRef)`: the app of a compiled `TestingModule`, served by `WebSocketsAdapter` on 127.0.0.1
 * at a port the system picks, with every gateway that has a port of its own on a port the system picks too
 * (`gatewayPorts: { '*': 0 }`), in one line; `url()` and `connect()` find them by the port their decorator names.
 * `close()` closes the test clients it made, then the app.
 */
import type { HttpServer, INestApplication, NestApplicationOptions } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { WebSocketsAdapter } from '../nest/websockets.adapter.js';
import type { WebSocketsModuleOptions } from '../nest/websockets-options.interface.js';
import type { WebSocketsServerInfo } from '../nest/websockets.service.js';
import { TestClient, type TestClientOptions } from './test-client.js';

/** What the kit needs of `@nestjs/testing`'s `TestingModule` (so that this package does not depend on it). */
export interface TestingModuleLike {
  createNestApplication<T extends INestApplication = INestApplication>(httpAdapter?: HttpServer, options?: NestApplicationOptions): T;
}

/** Options of `startTestingApp()`. */
export interface StartTestingAppOptions<A extends INestApplication> {
  /** The HTTP adapter: `new FastifyAdapter()` for Fastify. @default Express (`@nestjs/platform-express`) */
  httpAdapter?: HttpServer;
  /** `createNestApplication()`'s options (`httpsOptions` for TLS, `forceCloseConnections`, ...). */
  appOptions?: NestApplicationOptions;
  /** Options of the adapter, over the module's. @default `{ gatewayPorts: { '*': 0 } }` */
  adapterOptions?: WebSocketsModuleOptions;
  /** Called before `listen()`: global pipes, filters, `enableShutdownHooks()` ... */
  configure?: (app: A) => void | Promise<void>;
  /** Where the app listens. @default '127.0.0.1' */
  host?: string;
}

/** A started app. */
export interface TestingApp<A extends INestApplication = INestApplication> {
  readonly app: A;
  readonly adapter: WebSocketsAdapter;
  /** The port of the app's HTTP server. */
  readonly port: number;
  /** The live gateway servers: for each, the port it got (`port`) and the one its decorator names (`declaredPort`). */
  servers(): WebSocketsServerInfo[];
  /** The port a gateway declared on `declaredPort` listens on (0, the default: the app's server). */
  portOf(declaredPort?: number): number;
  /** `ws://127.0.0.1:<port><path>` (`wss` for a TLS server) of the gateway declared on `declaredPort`. */
  url(path?: string, declaredPort?: number): string;
  /** A connected `TestClient` of `url(path, options.port)`, closed by `close()`. */
  connect(path?: string, options?: TestClientOptions & { readonly port?: number }): Promise<TestClient>;
  /** Closes the clients of `connect()`, then the app. */
  close(): Promise<void>;
}

/**
 * Creates the app of `moduleRef`, serves its gateways with `WebSocketsAdapter` and listens on an ephemeral port.
 * @example
 *   const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
 *   const testing = await startTestingApp(moduleRef);
 *   const client = await testing.connect('/chat');
 */
export async function startTestingApp<A extends INestApplication = INestApplication>(
  moduleRef: TestingModuleLike,
  options: StartTestingAppOptions<A> = {},
): Promise<TestingApp<A>> {
  const host = options.host ?? '127.0.0.1';
  const app = moduleRef.createNestApplication<A>(options.httpAdapter, options.appOptions);
  const adapter = new WebSocketsAdapter(app, { gatewayPorts: { '*': 0 }, ...options.adapterOptions });
  app.useWebSocketAdapter(adapter);
  const clients = new Set<TestClient>();
  try {
    await options.configure?.(app);
    await app.listen(0, host);
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
  const httpServer = app.getHttpServer() as { address(): AddressInfo | string | null };
  // An https server (Express's httpsOptions, FastifyAdapter({ https })) is a tls.Server.
  const secureApp = httpServer instanceof tls.Server;
  const address = httpServer.address();
  const port = address !== null && typeof address === 'object' ? address.port : 0;
  const serverOf = (declaredPort: number): WebSocketsServerInfo | undefined => adapter.servers().find((server) => server.declaredPort === declaredPort);
  const portOf = (declaredPort = 0): number => {
    if (declaredPort === 0) return port;
    const server = serverOf(declaredPort);
    if (server === undefined) {
      const declared = adapter.servers().map((info) => info.declaredPort).filter((value) => value !== 0).sort((a, b) => a - b);
      throw new Error(`no gateway declared on port ${declaredPort} (gateways with a port of their own: ${declared.length === 0 ? 'none' : declared.join(', ')})`);
    }
    return server.port;
  };
  const url = (path = '/', declaredPort = 0): string => {
    const secure = declaredPort === 0 ? secureApp : (serverOf(declaredPort)?.secure ?? false);
    const shownHost = host.includes(':') ? `[${host}]` : host;
    return `${secure ? 'wss' : 'ws'}://${shownHost}:${portOf(declaredPort)}${path.startsWith('/') ? path : `/${path}`}`;
  };
  return {
    app,
    adapter,
    port,
    servers: () => adapter.servers(),
    portOf,
    url,
    async connect(path = '/', clientOptions = {}) {
      const { port: declaredPort, ...rest } = clientOptions;
      const client = await TestClient.connect(url(path, declaredPort), rest);
      clients.add(client);
      return client;
    },
    async close() {
      await Promise.all([...clients].map((client) => client.close().catch(() => undefined)));
      clients.clear();
      await app.close();
    },
  };
}
