/**
 * The configuration layer: every setting of the package (`SETTINGS`: option, environment variable, default and the
 * layer that uses it), and its resolution (an explicit option, then the environment, then the default), once, into
 * frozen objects that the layers above take. Nothing here reads `process.env`: callers pass the environment.
 */
export { SETTINGS, SETTING_LAYERS, DEFAULT_IDENTITY, PACKAGE_VERSION, PROXY_VARIABLES, describeSetting } from './settings.js';
export type { SettingName, SettingSpec, SettingKind, SettingLayer } from './settings.js';
export { isHeaderValue, type Environment } from './setting-values.js';
export { WEBSOCKETS_OPTION_NAMES, pickWebSocketsOptions, type CompressionOptions, type RefusalMode, type SlowConsumerPolicy, type WebSocketsOptions } from './websockets-options.js';
export { resolveConfig, type ConnectionLimits, type Limits, type ResolvedCompression, type ResolvedConfig } from './resolved-config.js';
export { resolveTlsFiles, type TlsFileField } from './tls-files.js';
export { resolveGatewayLimits, type GatewayLimits } from './gateway-limits.js';
export { resolveMaxRedirects } from './redirects.js';
export { resolveBackoff, type BackoffOptions, type ResolvedBackoff } from './backoff.js';
export { parseProxyUrl, resolveProxy, type ProxyOptions, type ProxyScheme, type ProxyUrl, type ProxyVariable, type ResolvedProxy } from './proxy.js';
export { resolveHost, resolveSocketPath, resolveSocketPermissions } from './listen-address.js';
export { resolveHttp2 } from './http2.js';
export { checkRedisUrl, resolveRedis, type ResolvedRedis } from './redis.js';
export { resolveClusterTiming, type ClusterTiming } from './cluster.js';
export { resolveGatewayPorts, listenPortOf, type GatewayPorts, type ResolvedGatewayPorts } from './gateway-ports.js';
export { resolveVerboseLogs } from './verbose-logs.js';
export { resolveSessions, type SessionOptions, type SessionSettings } from './sessions.js';
