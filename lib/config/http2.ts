/**
 * Whether a server on its own port speaks HTTP/2 as well as HTTP/1.1 (`http2`, `WEBSOCKETS_HTTP2`): WebSockets as
 * extended CONNECT streams (RFC 8441). Browsers only use HTTP/2 over TLS, so it needs TLS.
 */
import { ConfigError } from '../errors.js';
import { SETTINGS, describeSetting } from './settings.js';
import { invalid, type Environment } from './setting-values.js';

/**
 * `http2` of a server on its own port: the option, else WEBSOCKETS_HTTP2 (`on`/`off`, `true`/`false`, `1`/`0`,
 * `yes`/`no`), else off.
 * @param secure whether the listener has TLS: HTTP/2 without it is refused with a ConfigError that says how to fix it
 * @throws ConfigError for an option that is not a boolean, a variable that is not on or off, or HTTP/2 without TLS
 */
export function resolveHttp2(option: unknown, env: Environment, secure: boolean): boolean {
  let on: boolean;
  let from: 'option' | 'env' = 'option';
  if (option !== undefined) {
    if (typeof option !== 'boolean') throw invalid('http2', option, 'a boolean', 'option');
    on = option;
  } else {
    const raw = env[SETTINGS.http2.env];
    from = 'env';
    if (raw === undefined || raw === '' || /^(off|false|0|no)$/i.test(raw)) on = false;
    else if (/^(on|true|1|yes)$/i.test(raw)) on = true;
    else throw invalid('http2', raw, '"on" or "off"', 'env');
  }
  if (on && !secure) {
    const where = from === 'env' ? `${SETTINGS.http2.env} is on` : 'option http2 is true';
    throw new ConfigError(
      `${where} but the server has no TLS: browsers speak HTTP/2 over TLS only; give the tls option (or ` +
        `WEBSOCKETS_TLS_CERT and WEBSOCKETS_TLS_KEY), or turn http2 off (${describeSetting('http2')})`,
      SETTINGS.http2.option,
      option ?? env[SETTINGS.http2.env],
    );
  }
  return on;
}
