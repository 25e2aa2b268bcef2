/**
 * TLS options of the servers: the `tls` option merged with the PEM files named by WEBSOCKETS_TLS_CERT,
 * WEBSOCKETS_TLS_KEY and WEBSOCKETS_TLS_CA (which files, and whether the certificate has its key, is decided by
 * `resolveTlsFiles` in config.ts). The files are read and checked once, when a server or the Nest module is created,
 * so that a wrong path or a key that does not match its certificate stops the start with a message that names the
 * variable, the value and the fix, instead of failing at the first TLS handshake. The node layer's own listener and
 * the Nest module (its own-port gateways and `httpsOptions()`) share this code.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type TlsOptions } from 'node:tls';
import { ConfigError } from '../errors.js';
import { SETTINGS, describeSetting, resolveTlsFiles, type Environment, type TlsFileField } from '../config/index.js';

/** An error's message; `instanceof Error` is not used because errors may come from another realm (a VM context). */
function messageOf(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(error);
}

/** The setting of each field, for messages. */
const SETTING_OF: Readonly<Record<TlsFileField, 'tlsCert' | 'tlsKey' | 'tlsCa'>> = { cert: 'tlsCert', key: 'tlsKey', ca: 'tlsCa' };

/** Reads the PEM file that a variable names. @throws ConfigError for an unreadable file or one that is not PEM */
function readPemFile(field: TlsFileField, file: string): Buffer {
  const name = SETTING_OF[field];
  const variable = SETTINGS[name].env;
  let contents: Buffer;
  try {
    contents = readFileSync(file);
  } catch (error) {
    const failure = new ConfigError(
      `${variable} names a file that cannot be read: ${JSON.stringify(file)} (${messageOf(error)}); ` +
        `set it to the path of a readable PEM file, or unset it (${describeSetting(name)})`,
      SETTINGS[name].option,
      file,
    );
    throw Object.assign(failure, { cause: error });
  }
  if (!contents.includes('-----BEGIN ')) {
    throw new ConfigError(
      `${variable} names a file that is not PEM: ${JSON.stringify(file)} has no "-----BEGIN" line; ` +
        `give the path of a PEM file (${describeSetting(name)})`,
      SETTINGS[name].option,
      file,
    );
  }
  return contents;
}

/**
 * The `tls` option with `cert`, `key` and `ca` read from the files their variables name when the option leaves them
 * out; when there is a certificate (or a `pfx`), Node's TLS is asked to load it, so that a key that does not match
 * is caught here.
 * @throws ConfigError for an option that is not an object, a certificate without its key (or the reverse), an
 *   unreadable or non-PEM file, or a key and certificate that Node's TLS refuses
 */
export function readTlsFiles(tls: TlsOptions | undefined, env: Environment): Readonly<TlsOptions> {
  if (tls !== undefined && (typeof tls !== 'object' || tls === null)) {
    throw new ConfigError(`option tls must be an object of TLS options (key, cert, ca, ...); got ${String(tls)}`, 'tls', tls);
  }
  const merged: TlsOptions = { ...tls };
  const files = resolveTlsFiles(tls, env);
  for (const field of Object.keys(files) as TlsFileField[]) merged[field] = readPemFile(field, files[field]!);
  if (merged.cert !== undefined || merged.pfx !== undefined) {
    try {
      // Node checks the PEM syntax, the passphrase and that the key matches the certificate here.
      createSecureContext(merged);
    } catch (error) {
      const failure = new ConfigError(
        `the TLS key and certificate are not usable: ${messageOf(error)}; check that WEBSOCKETS_TLS_KEY (or option tls.key) ` +
          `is the private key of WEBSOCKETS_TLS_CERT (or option tls.cert), and tls.passphrase if the key is encrypted`,
        'tls',
        undefined,
      );
      throw Object.assign(failure, { cause: error });
    }
  }
  return Object.freeze(merged);
}

/**
 * The TLS settings of the Nest module: the `tls` option (a base) merged with the variables' files. TLS is on when
 * there is a certificate and a key (or a `pfx`); a CA alone (which clients use too) does not turn it on.
 * @returns the options, or `null` when TLS is off
 * @throws ConfigError as `readTlsFiles`
 */
export function resolveTlsOptions(tls: TlsOptions | undefined, env: Environment): Readonly<TlsOptions> | null {
  const merged = readTlsFiles(tls, env);
  return merged.cert === undefined && merged.pfx === undefined ? null : merged;
}

/**
 * The TLS settings of a server on its own port. An explicit `tls` object turns TLS on, its missing `cert`, `key`
 * and `ca` read from the variables' files; `false` keeps the server on plain TCP whatever the variables say; without
 * the option, WEBSOCKETS_TLS_CERT and WEBSOCKETS_TLS_KEY turn TLS on (no silent plain-text server when they are set).
 * @returns the options for `tls.createServer`, or `null` for plain TCP
 * @throws ConfigError as `readTlsFiles`
 */
export function serverTlsOptions(tls: TlsOptions | false | undefined, env: Environment): Readonly<TlsOptions> | null {
  if (tls === false) return null;
  return tls === undefined ? resolveTlsOptions(undefined, env) : readTlsFiles(tls, env);
}
