/**
 * Where a server on its own port listens: the bind address (`host`, `WEBSOCKETS_HOST`), or a Unix socket
 * (`socketPath`, `WEBSOCKETS_SOCKET_PATH`) and its permissions.
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

/**
 * The bind address of a server on its own port: the option, else WEBSOCKETS_HOST, else `null` (Node's default: every
 * interface).
 * @throws ConfigError for an option or variable that is not a host name or an IP address (empty, or with spaces)
 */
export function resolveHost(option: unknown, env: Environment): string | null {
  if (option !== undefined && option !== null) {
    if (typeof option !== 'string' || !HOST.test(option)) throw invalid('host', option, 'an IP address or a host name', 'option');
    return option;
  }
  const raw = env[SETTINGS.host.env];
  if (raw === undefined || raw === '') return null;
  if (!HOST.test(raw)) throw invalid('host', raw, 'an IP address or a host name', 'env');
  return raw;
}

/** A host name, an IPv4 address or an IPv6 address (with or without brackets): no spaces, no path, no port. */
const HOST = /^(?:\[?[0-9A-Fa-f:.]+(?:%[\w.-]+)?\]?|[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)$/;
