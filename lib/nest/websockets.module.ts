/**
 * `WebSocketsModule`: configures every gateway served by `WebSocketsAdapter`. Built on Nest's
 * `ConfigurableModuleBuilder`, so it has the shape Nest users know: `forRoot(options)`, `forRootAsync({ imports,
 * inject, useFactory | useClass | useExisting })` (which takes `@nestjs/config`'s `registerAs(...).asProvider()`), and
 * `isGlobal`. The options are validated when the app starts.
 */
import { ConfigurableModuleBuilder, Module } from '@nestjs/common';
import type { Environment } from '../config/index.js';
import { WEBSOCKETS_MODULE_OPTIONS } from './websockets.constants.js';
import type { WebSocketsModuleOptions, WebSocketsTlsOptions } from './websockets-options.interface.js';
import { WebSocketsService } from './websockets.service.js';
import { WebSocketsDefaultAdapter } from './default-adapter.js';
import { WebSocketsHealthIndicator } from './health/websockets-health.indicator.js';
import { websocketsHttpsOptions, type HttpsOptions } from './tls-options.js';

/** The pieces `ConfigurableModuleBuilder` makes: the base class, and the option types of `forRoot` / `forRootAsync`. */
export const {
  ConfigurableModuleClass: WebSocketsConfigurableModule,
  OPTIONS_TYPE: WEBSOCKETS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: WEBSOCKETS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<WebSocketsModuleOptions>({ optionsInjectionToken: WEBSOCKETS_MODULE_OPTIONS })
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();

/** What `WebSocketsModule.forRoot()` takes: the module's options, plus `isGlobal`. */
export type WebSocketsModuleForRootOptions = typeof WEBSOCKETS_OPTIONS_TYPE;
/** What `WebSocketsModule.forRootAsync()` takes: `imports`, `inject`, `useFactory` / `useClass` / `useExisting`, `isGlobal`. */
export type WebSocketsModuleAsyncOptions = typeof WEBSOCKETS_ASYNC_OPTIONS_TYPE;

/**
 * Import it once, with `forRoot()` or `forRootAsync()`; `WebSocketsAdapter` then reads its options from the app.
 * It provides and exports `WebSocketsService` and `WebSocketsHealthIndicator` (for `@nestjs/terminus`), and makes the app use `WebSocketsAdapter` unless
 * `app.useWebSocketAdapter()` says otherwise.
 */
@Module({
  // WebSocketsDefaultAdapter makes the app use WebSocketsAdapter without useWebSocketAdapter() (see its file).
  providers: [WebSocketsService, WebSocketsDefaultAdapter, WebSocketsHealthIndicator],
  exports: [WebSocketsService, WebSocketsHealthIndicator],
})
export class WebSocketsModule extends WebSocketsConfigurableModule {
  /**
   * The module's TLS settings for the app's own server, which exists before any module is configured:
   * `NestFactory.create(AppModule, { httpsOptions: WebSocketsModule.httpsOptions() })`. Reads WEBSOCKETS_TLS_CERT,
   * WEBSOCKETS_TLS_KEY and WEBSOCKETS_TLS_CA (file paths) like the module does, merged under `tls` when given, with
   * `handshakeTimeout` = `openTimeoutMs` (WEBSOCKETS_OPEN_TIMEOUT_MS) unless `tls` sets it.
   * @returns the options, or `undefined` when TLS is off (the app stays on http)
   * @throws ConfigError for an unreadable file, a certificate without its key (or the reverse), or a key that does
   *   not match its certificate
   */
  static httpsOptions(tls?: WebSocketsTlsOptions, env: Environment = process.env): HttpsOptions | undefined {
    return websocketsHttpsOptions(tls, env);
  }
}
