/**
 * `WebSocketsService`: the resolved options and the live gateway servers, injectable anywhere once
 * `WebSocketsModule` is imported. Its constructor validates the options, so a bad option or an unreadable TLS file
 * stops the app at start-up (`NestFactory.create()` / `Test.createTestingModule().compile()` rejects).
 */
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { WEBSOCKETS_MODULE_OPTIONS } from './websockets.constants.js';
import { resolveWebSocketsOptions } from './websockets-options.js';
import { httpsOptionsOf, type HttpsOptions } from './tls-options.js';
import type { ResolvedWebSocketsOptions, WebSocketsModuleOptions } from './websockets-options.interface.js';
import type { WebSocketsGatewayServer } from './gateway-server.js';

/** One live gateway server, as `WebSocketsService.servers()` lists it. */
export interface WebSocketsServerInfo {
  /** The port it listens on: the app's port for a gateway on the app's server (`@WebSocketGateway()` without a port). */
  readonly port: number;
  /** Whether it shares the app's HTTP(S) server. */
  readonly sharesAppServer: boolean;
  /** The Unix socket it listens on, or `null` for a TCP port (`port` is 0 then). */
  readonly socketPath: string | null;
  /** The path the server owns, or `null` for every path. */
  readonly path: string | null;
  /** Whether it is served over TLS. */
  readonly secure: boolean;
  /** Open connections right now. */
  readonly connections: number;
  /** The server object that `@WebSocketServer()` injects. */
  readonly server: WebSocketsGatewayServer;
}

@Injectable()
export class WebSocketsService implements OnApplicationBootstrap {
  /** The validated options, resolved against the environment and the defaults. */
  readonly options: ResolvedWebSocketsOptions;
  readonly #servers = new Set<WebSocketsGatewayServer>();

  /** @throws ConfigError when an option, or a WEBSOCKETS_* variable, is invalid */
  constructor(@Inject(WEBSOCKETS_MODULE_OPTIONS) options: WebSocketsModuleOptions) {
    this.options = resolveWebSocketsOptions(options);
  }

  /**
   * Called by Nest once the gateways exist (`app.init()` / `app.listen()`): waits until each server is subscribed
   * to its broadcast channel, so that a Redis that cannot be reached stops the app at start-up.
   * @throws RedisUnavailableError, RedisClientMissingError
   */
  async onApplicationBootstrap(): Promise<void> {
    await Promise.all([...this.#servers].map((server) => server.ready()));
  }

  /** The live gateway servers with their connection counts, in the order they were created. */
  servers(): WebSocketsServerInfo[] {
    return [...this.#servers].map((server) => ({
      port: server.address()?.port ?? server.port,
      sharesAppServer: server.port === 0 && server.socketPath === null,
      socketPath: server.socketPath,
      path: server.path,
      secure: server.secure,
      connections: server.clients.size,
      server,
    }));
  }

  /** Open connections across every gateway server. */
  get connections(): number {
    let total = 0;
    for (const server of this.#servers) total += server.clients.size;
    return total;
  }

  /**
   * The module's TLS settings for `NestFactory.create(AppModule, { httpsOptions })`, or `undefined` when TLS is off,
   * with `handshakeTimeout` = the module's `openTimeoutMs` unless `tls` sets it.
   * (Before the app exists, use `websocketsHttpsOptions()`, which reads the same settings.)
   */
  httpsOptions(): HttpsOptions | undefined {
    return httpsOptionsOf(this.options.tls, this.options.config.openTimeoutMs);
  }

  /** @internal Called by the adapter when it creates a server. */
  track(server: WebSocketsGatewayServer): void {
    this.#servers.add(server);
  }

  /** @internal Called by the adapter when a server is closed. */
  untrack(server: WebSocketsGatewayServer): void {
    this.#servers.delete(server);
  }
}
