/**
 * TLS settings of the Nest integration: the `tls` option merged with the PEM files named by WEBSOCKETS_TLS_CERT,
 * WEBSOCKETS_TLS_KEY and WEBSOCKETS_TLS_CA, read and checked once at start-up so that a wrong path or a key that
 * does not match its certificate stops the app with a message that names the variable, the value and the fix,
 * instead of failing at the first TLS handshake.
 */
import type { NestApplicationOptions } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../errors.js';
import { SETTINGS, describeSetting, type Environment } from '../config.js';
import type { WebSocketsTlsOptions } from './websockets-options.interface.js';

/** What `NestFactory.create()` takes as `httpsOptions`. */
export type HttpsOptions = NonNullable<NestApplicationOptions['httpsOptions']>;

/** An error's message; `instanceof Error` is not used because errors may come from another realm (a VM context). */
function messageOf(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(error);
}

type TlsFileSetting = 'tlsCert' | 'tlsKey' | 'tlsCa';

/** The option field each variable fills. */
const FIELD: Record<TlsFileSetting, 'cert' | 'key' | 'ca'> = { tlsCert: 'cert', tlsKey: 'key', tlsCa: 'ca' };

/** Reads the PEM file named by the setting's variable, or returns `undefined` when the variable is unset or empty. */
function readPemFile(name: TlsFileSetting, env: Environment): Buffer | undefined {
  const variable = SETTINGS[name].env;
  const file = env[variable];
  if (file === undefined || file === '') return undefined;
  let contents: Buffer;
  try {
    contents = readFileSync(file);
  } catch (error) {
    const reason = messageOf(error);
    throw Object.assign(
      new ConfigError(
        `${variable} names a file that cannot be read: ${JSON.stringify(file)} (${reason}); ` +
          `set it to the path of a readable PEM file, or unset it (${describeSetting(name)})`,
        SETTINGS[name].option,
        file,
      ),
      { cause: error },
    );
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
 * The effective TLS options: each of `cert`, `key` and `ca` from the option when given, else from the file its
 * variable names. TLS is on when there is a certificate and a key (or a `pfx`); a CA alone (which clients use too)
 * does not turn it on.
 * @returns the options, or `null` when TLS is off
 * @throws ConfigError for an unreadable or non-PEM file, a certificate without a key (or the reverse), or a key
 *   and certificate that Node's TLS refuses (for instance, they do not match)
 */
export function resolveTlsOptions(tls: WebSocketsTlsOptions | undefined, env: Environment): Readonly<WebSocketsTlsOptions> | null {
  if (tls !== undefined && (typeof tls !== 'object' || tls === null)) {
    throw new ConfigError(`option tls must be an object of TLS options (key, cert, ca, ...); got ${String(tls)}`, 'tls', tls);
  }
  const merged: WebSocketsTlsOptions = { ...tls };
  for (const name of Object.keys(FIELD) as TlsFileSetting[]) {
    const field = FIELD[name];
    if (merged[field] !== undefined) continue; // the option wins over the environment
    const contents = readPemFile(name, env);
    if (contents !== undefined) merged[field] = contents;
  }
  const hasCert = merged.cert !== undefined;
  const hasKey = merged.key !== undefined;
  if (hasCert !== hasKey) {
    const [given, missing] = hasCert ? (['tlsCert', 'tlsKey'] as const) : (['tlsKey', 'tlsCert'] as const);
    throw new ConfigError(
      `a TLS ${FIELD[given] === 'cert' ? 'certificate' : 'key'} is configured without its ` +
        `${FIELD[missing] === 'cert' ? 'certificate' : 'key'}; set ${describeSetting(missing)} as well, ` +
        `or remove ${describeSetting(given)}`,
      SETTINGS[missing].option,
      undefined,
    );
  }
  if (!hasCert && merged.pfx === undefined) return null;
  try {
    // Node checks the PEM syntax, the passphrase and that the key matches the certificate here.
    createSecureContext(merged);
  } catch (error) {
    const reason = messageOf(error);
    throw Object.assign(
      new ConfigError(
        `the TLS key and certificate are not usable: ${reason}; check that WEBSOCKETS_TLS_KEY (or option tls.key) ` +
          `is the private key of WEBSOCKETS_TLS_CERT (or option tls.cert), and tls.passphrase if the key is encrypted`,
        'tls',
        undefined,
      ),
      { cause: error },
    );
  }
  return Object.freeze(merged);
}

/**
 * The same TLS settings as the module's, for the app's own server: pass the result to
 * `NestFactory.create(AppModule, { httpsOptions: websocketsHttpsOptions() })`. It is needed there because the app's
 * server exists before any module is configured. Returns `undefined` when TLS is off, so that the app stays on http.
 * @param tls the module's `tls` option, when it is configured in code rather than by environment
 * @param env the environment to read WEBSOCKETS_TLS_* from (default `process.env`)
 * @throws ConfigError as `resolveTlsOptions`
 */
export function websocketsHttpsOptions(tls?: WebSocketsTlsOptions, env: Environment = process.env): HttpsOptions | undefined {
  const resolved = resolveTlsOptions(tls, env);
  // Nest's HttpsOptions is a loosely typed subset of Node's TlsOptions; the object is handed to https.createServer.
  return resolved === null ? undefined : ({ ...resolved } as HttpsOptions);
}
