/**
 * `WebSocketsDefaultAdapter`: what makes an app that imports `WebSocketsModule` serve its gateways with
 * `WebSocketsAdapter` without a `useWebSocketAdapter()` call, in `NestFactory.create()` and in
 * `Test.createTestingModule(...).compile()` + `createNestApplication()` alike (where the `nest new` scaffold's e2e
 * test otherwise fails with "No driver (WebSockets) has been selected").
 *
 * How: Nest's socket module asks the app's `ApplicationConfig` for an adapter when the first gateway connects
 * (`app.init()`), and loads `@nestjs/platform-socket.io`'s `IoAdapter` only when there is none. `ApplicationConfig`
 * is a provider of every module (Nest's `Module.addApplicationConfig()`), the same instance the app holds, so this
 * provider, made when the module is compiled, sets the adapter first. `app.useWebSocketAdapter()` called later
 * replaces it, as before. The app's HTTP server does not exist yet at that time: the adapter reads it from
 * `HttpAdapterHost` at its first `create()`.
 */
import { Injectable, Optional, type INestApplicationContext } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost, ModulesContainer } from '@nestjs/core';
import { WebSocketsAdapter } from './websockets.adapter.js';

@Injectable()
export class WebSocketsDefaultAdapter {
  /** The adapter it installed, or `null` when the app already had one. */
  readonly adapter: WebSocketsAdapter | null;

  constructor(config: ApplicationConfig, modules: ModulesContainer, @Optional() host?: HttpAdapterHost) {
    if (config.getIoAdapter() !== undefined && config.getIoAdapter() !== null) {
      this.adapter = null;
      return;
    }
    // What the adapter reads of an app: its modules (for the gateways and the module's options) and its HTTP server.
    const app = {
      get: (token: unknown) => (token === ModulesContainer ? modules : undefined),
      getHttpServer: () => host?.httpAdapter?.getHttpServer(),
    } as unknown as INestApplicationContext;
    this.adapter = new WebSocketsAdapter(app);
    config.setIoAdapter(this.adapter);
  }
}
