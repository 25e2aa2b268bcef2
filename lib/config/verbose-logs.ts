/**
 * Whether routine events are logged (`verboseLogs`, `WEBSOCKETS_VERBOSE_LOGS`): each connection, refused handshake
 * and invalid message, at the `verbose` level. Off by default: Nest's default logger prints every level, and a line
 * per connection drowns what matters; the metrics count them (docs/how-to/operations.md).
 */
import { SETTINGS } from './settings.js';
import { invalid, type Environment } from './setting-values.js';

/**
 * The option, else WEBSOCKETS_VERBOSE_LOGS (`on`/`true`/`1`/`yes` or `off`/`false`/`0`/`no`), else off.
 * @throws ConfigError for an option that is not a boolean, or a variable that is not one of those words
 */
export function resolveVerboseLogs(option: unknown, env: Environment): boolean {
  if (option !== undefined && option !== null) {
    if (typeof option !== 'boolean') throw invalid('verboseLogs', option, 'true or false', 'option');
    return option;
  }
  const raw = env[SETTINGS.verboseLogs.env];
  if (raw === undefined || raw === '') return SETTINGS.verboseLogs.default;
  if (/^(on|true|1|yes)$/i.test(raw)) return true;
  if (/^(off|false|0|no)$/i.test(raw)) return false;
  throw invalid('verboseLogs', raw, '"on" or "off"', 'env');
}
