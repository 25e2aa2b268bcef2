/**
 * Which TLS files a server on its own port reads: the `tls` option's fields, completed from `WEBSOCKETS_TLS_CERT`,
 * `_KEY` and `_CA`. This module reads no file (the Node layer does, `readTlsFiles`).
 */
import { ConfigError } from '../errors.js';
import { SETTINGS, describeSetting } from './settings.js';
import type { Environment } from './setting-values.js';

/** The TLS fields that may come from a file named by a variable (`WEBSOCKETS_TLS_CERT`, `_KEY`, `_CA`). */
export type TlsFileField = 'cert' | 'key' | 'ca';

/** The setting of each TLS file field. */
const TLS_FILE_SETTINGS: Readonly<Record<TlsFileField, 'tlsCert' | 'tlsKey' | 'tlsCa'>> = Object.freeze({ cert: 'tlsCert', key: 'tlsKey', ca: 'tlsCa' });

/**
 * Which TLS files to read: for each of `cert`, `key` and `ca` that the `tls` option leaves out, the path its variable
 * names (an unset or empty variable names none). The option wins field by field. This module reads no file: the
 * node layer reads these paths (`readTlsFiles`).
 * @param option the fields the `tls` option gives (only whether each is present matters here)
 * @throws ConfigError when a certificate ends up without its key, or a key without its certificate; the message
 *   names both options and both variables
 */
export function resolveTlsFiles(
  option: Readonly<Partial<Record<TlsFileField, unknown>>> | undefined,
  env: Environment,
): Readonly<Partial<Record<TlsFileField, string>>> {
  const files: Partial<Record<TlsFileField, string>> = {};
  for (const field of Object.keys(TLS_FILE_SETTINGS) as TlsFileField[]) {
    if (option?.[field] !== undefined) continue;
    const file = env[SETTINGS[TLS_FILE_SETTINGS[field]].env];
    if (file !== undefined && file !== '') files[field] = file;
  }
  const hasCert = option?.cert !== undefined || files.cert !== undefined;
  const hasKey = option?.key !== undefined || files.key !== undefined;
  if (hasCert !== hasKey) {
    const [given, missing] = hasCert ? (['tlsCert', 'tlsKey'] as const) : (['tlsKey', 'tlsCert'] as const);
    throw new ConfigError(
      `a TLS ${given === 'tlsCert' ? 'certificate' : 'key'} is configured without its ` +
        `${missing === 'tlsCert' ? 'certificate' : 'key'}; set ${describeSetting(missing)} as well, ` +
        `or remove ${describeSetting(given)}`,
      SETTINGS[missing].option,
      undefined,
    );
  }
  return Object.freeze(files);
}
