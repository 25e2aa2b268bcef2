/**
 * The Unix socket a server listens on (`socketPath`, `WEBSOCKETS_SOCKET_PATH`) and its permissions.
 */
import { SETTINGS } from './settings.js';
import { invalid, type Environment } from './setting-values.js';

/**
 * The Unix socket path to listen on: the option, else WEBSOCKETS_SOCKET_PATH, else `null` (a TCP port). The sample
 * app and the echo server call it with `process.env`; `WebSocketServer` takes the option only, so that a variable
 * meant for one server does not move every server of the process.
 * @throws ConfigError for an option that is not a non-empty string
 */
export function resolveSocketPath(option: unknown, env: Environment): string | null {
  if (option !== undefined && option !== null) {
    if (typeof option !== 'string' || option === '') throw invalid('socketPath', option, 'a file path', 'option');
    return option;
  }
  const raw = env[SETTINGS.socketPath.env];
  return raw === undefined || raw === '' ? null : raw;
}

/**
 * Permissions of a Unix socket file: the option (`0o660`), else WEBSOCKETS_SOCKET_PERMISSIONS in octal (`660` or
 * `0660`), else `null` (what the umask gives).
 * @throws ConfigError for a value outside 0-0o777 or a variable that is not three octal digits
 */
export function resolveSocketPermissions(option: unknown, env: Environment): number | null {
  if (option !== undefined && option !== null) {
    if (typeof option !== 'number' || !Number.isInteger(option) || option < 0 || option > 0o777) {
      throw invalid('socketPermissions', option, 'permission bits from 0 to 0o777 (e.g. 0o660)', 'option');
    }
    return option;
  }
  const raw = env[SETTINGS.socketPermissions.env];
  if (raw === undefined || raw === '') return null;
  if (!/^0?[0-7]{3}$/.test(raw)) throw invalid('socketPermissions', raw, 'three octal digits (e.g. 660)', 'env');
  return parseInt(raw, 8);
}
