/**
 * The sample's WebSocket settings, as an `@nestjs/config` namespace: `WebSocketsModule.forRootAsync(
 * websocketsConfig.asProvider())`. Limits, timeouts, compression, the bind host and TLS come from the WEBSOCKETS_*
 * variables by themselves (see .env.example); this adds the sample's own variable.
 */
import { registerAs } from '@nestjs/config';
import type { WebSocketsModuleOptions } from '../lib/nest/index.js';

export const websocketsConfig = registerAs('websockets', (): WebSocketsModuleOptions => {
  const origins = process.env.SAMPLE_ALLOWED_ORIGINS;
  return origins === undefined || origins === '' ? {} : { allowedOrigins: origins.split(',').map((origin) => origin.trim()) };
});
