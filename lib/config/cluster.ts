/**
 * The timing of the cluster-wide operations (`clusterTimeoutMs`, `clusterHeartbeatMs`, `clusterExpiryMs`): how long
 * an operation waits for the other instances, how often each instance says it is alive, and after how long a silent
 * one is dead. Resolved and checked here, at start-up.
 */
import { ConfigError } from '../errors.js';
import { describeSetting } from './settings.js';
import { resolveInteger, type Environment } from './setting-values.js';

export interface ClusterTiming {
  /** Default bound on a cluster-wide operation, in ms. */
  readonly timeoutMs: number;
  /** Interval of the heartbeats, in ms. */
  readonly heartbeatMs: number;
  /** Silence after which an instance is dead, in ms (more than one heartbeat). */
  readonly expiryMs: number;
}

/**
 * Resolves the cluster timing: option, then variable, then default.
 * @throws ConfigError for a value that is not a positive integer, or an expiry not above the heartbeat interval
 */
export function resolveClusterTiming(
  options: { readonly clusterTimeoutMs?: unknown; readonly clusterHeartbeatMs?: unknown; readonly clusterExpiryMs?: unknown } = {},
  env: Environment = {},
): Readonly<ClusterTiming> {
  const timeoutMs = resolveInteger('clusterTimeoutMs', options.clusterTimeoutMs, env, 'ms');
  const heartbeatMs = resolveInteger('clusterHeartbeatMs', options.clusterHeartbeatMs, env, 'ms');
  const expiryMs = resolveInteger('clusterExpiryMs', options.clusterExpiryMs, env, 'ms');
  if (expiryMs <= heartbeatMs) {
    throw new ConfigError(
      `clusterExpiryMs (${expiryMs} ms) must be more than clusterHeartbeatMs (${heartbeatMs} ms), or live instances would be ` +
        `taken for dead between two heartbeats; three heartbeats or more is advised (${describeSetting('clusterExpiryMs')})`,
      'clusterExpiryMs',
      expiryMs,
    );
  }
  return Object.freeze({ timeoutMs, heartbeatMs, expiryMs });
}
