/**
 * How many redirects the client follows (`maxRedirects`, `WEBSOCKETS_MAX_REDIRECTS`).
 */
import { resolveInteger, type Environment } from './setting-values.js';

/**
 * Most redirects `connect()` follows: the option, else WEBSOCKETS_MAX_REDIRECTS, else 10. 0 follows none.
 * @throws ConfigError for a negative or fractional number
 */
export function resolveMaxRedirects(option: unknown, env: Environment): number {
  return resolveInteger('maxRedirects', option, env, 'redirects', 0);
}
