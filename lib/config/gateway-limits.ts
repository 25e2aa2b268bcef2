/**
 * The limits of the Nest gateway layer (`maxJsonDepth`, `maxRoomsPerClient`): what one message may nest and how many
 * rooms one client may be in.
 */
import { resolveInteger, resolveOptionalCount, type Environment } from './setting-values.js';

/** Limits of the Nest gateway layer: what one message may nest, and how many rooms one client may be in. */
export interface GatewayLimits {
  /** Deepest nesting of arrays and objects the default message parser accepts (the message itself is level 1). */
  readonly maxJsonDepth: number;
  /** Most rooms one client can be in, or `null` for no limit. */
  readonly maxRoomsPerClient: number | null;
}

/**
 * Resolves the gateway limits (module or gateway options) against the environment and the defaults.
 * @throws ConfigError naming the option or variable, the value and what is expected
 */
export function resolveGatewayLimits(
  options: { readonly maxJsonDepth?: unknown; readonly maxRoomsPerClient?: unknown } = {},
  env: Environment = {},
): Readonly<GatewayLimits> {
  return Object.freeze({
    maxJsonDepth: resolveInteger('maxJsonDepth', options.maxJsonDepth, env, 'levels of nesting'),
    maxRoomsPerClient: resolveOptionalCount('maxRoomsPerClient', options.maxRoomsPerClient, env, 'rooms'),
  });
}
