/**
 * The Nest integration's public surface (re-exported by `lib/index.ts`): the adapter, the module and its service,
 * the gateway server with rooms and broadcast, the option types and the broadcast bus seam.
 */
export { WebSocketsAdapter } from './websockets.adapter.js';
export type { WebSocketsCloseInfo, OnWebSocketsConnection, OnWebSocketsDisconnect } from './websockets.adapter.js';
export {
  WebSocketsModule,
  WebSocketsConfigurableModule,
  WEBSOCKETS_OPTIONS_TYPE,
  WEBSOCKETS_ASYNC_OPTIONS_TYPE,
} from './websockets.module.js';
export type { WebSocketsModuleForRootOptions, WebSocketsModuleAsyncOptions } from './websockets.module.js';
export { WebSocketsService } from './websockets.service.js';
export type { WebSocketsServerInfo } from './websockets.service.js';
export { WebSocketsHealthIndicator } from './health/websockets-health.indicator.js';
export type {
  WebSocketsHealthDetails,
  WebSocketsHealthOptions,
  WebSocketsHealthResult,
  WebSocketsHealthStatus,
  WebSocketsServerHealth,
} from './health/websockets-health.indicator.js';
export { WebSocketsGatewayServer } from './gateway-server.js';
export { exceptionFrame, type ExceptionFrame } from './exception-frames.js';
export * from '../broadcast/index.js';
export { WebSocketsExceptionFilter } from './websockets-exception.filter.js';
export type { WebSocketsHandshakeRequest } from './handshake-request.js';
export { parseJsonMessage, createJsonMessageParser, exceedsJsonDepth, readTopLevelId } from './message-parser.js';
export type { JsonMessageParserOptions } from './message-parser.js';
export { websocketsHttpsOptions } from './tls-options.js';
export type { HttpsOptions } from './tls-options.js';
export { WEBSOCKETS_MODULE_OPTIONS, EXCEPTION_EVENT } from './websockets.constants.js';
export { GatewayWebSocket, type ClientSession } from './gateway-websocket.js';
export { SessionWebSocket } from './session-websocket.js';
export type {
  HandshakeGuard,
  InvalidMessagePolicy,
  MessageParser,
  ParsedMessage,
  ResolvedWebSocketsOptions,
  WebSocketsGatewayOptions,
  WebSocketsModuleOptions,
  WebSocketsServerOptions,
  WebSocketsTlsOptions,
} from './websockets-options.interface.js';
