/**
 * The sample's WebSocket settings, as an `@nestjs/config` namespace: `WebSocketsModule.forRootAsync(
 * websocketsConfig.asProvider())`. Limits, timeouts, compression, the bind host and TLS come from the WEBSOCKETS_*
 * variables by themselves (see .env.example); this adds the sample's own variable, and turns resumable sessions on
 * unless WEBSOCKETS_SESSIONS says otherwise (the chat page asks for one).
 */
import { registerAs } from '@nestjs/config';
import type { WebSocketsModuleOptions } from '../lib/nest/index.js';

export const websocketsConfig = registerAs('websockets', (): WebSocketsModuleOptions => {
  const origins = process.env.SAMPLE_ALLOWED_ORIGINS;
  const sessions = process.env.WEBSOCKETS_SESSIONS === undefined || process.env.WEBSOCKETS_SESSIONS === '' ? { sessions: true } : {};
  return origins === undefined || origins === '' ? sessions : { ...sessions, allowedOrigins: origins.split(',').map((origin) => origin.trim()) };
});
