/** What every entry point shares: configuration, settings and the error classes. */
export { resolveConfig, resolveGatewayLimits, isHeaderValue } from './config.js';
export type {
  WebSocketsOptions,
  CompressionOptions,
  ResolvedConfig,
  ResolvedCompression,
  Limits,
  ConnectionLimits,
  Environment,
  GatewayLimits,
  BackoffOptions,
  RefusalMode,
  ResolvedBackoff,
  ProxyOptions,
  ProxyUrl,
  ProxyScheme,
} from './config.js';
export { SETTINGS, DEFAULT_IDENTITY, PACKAGE_VERSION, describeSetting } from './settings.js';
export type { SettingName, SettingSpec } from './settings.js';
export * from './errors.js';
