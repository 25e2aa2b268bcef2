/**
 * RFC 7692 permessage-deflate negotiation over the `Sec-WebSocket-Extensions` header (RFC 6455 §9.1), sans-I/O:
 * strings in, strings and `DeflateParams` out. The zlib work is behind `compression.ts`.
 *
 * Server: `negotiateDeflate(offer, config)` accepts the first acceptable offer and builds the response.
 * Client: `deflateOffer(config)` builds the request header and `acceptDeflateResponse(response, config)` checks the
 * server's answer against what was offered.
 */
import type { ResolvedCompression } from '../config/index.js';
import { InvalidExtensionsError } from '../errors.js';
import type { DeflateParams } from './compression.js';

/** The header that carries extension offers and responses (RFC 6455 §11.3.2). */
export const SEC_WEBSOCKET_EXTENSIONS = 'Sec-WebSocket-Extensions';

/** The registered name of the extension (RFC 7692 §7). */
export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** RFC 7692 §7.1.2: the smallest LZ77 window a peer may ask for, 2^8 = 256 bytes. */
export const MIN_WINDOW_BITS = 8;
/** RFC 7692 §7.1.2: the largest LZ77 window, 2^15 = 32 KiB, which a peer may use when nothing limits it. */
export const MAX_WINDOW_BITS = 15;

/** One extension of the header: its name and its parameters in order (a `null` value is a parameter without `=`). */
export interface ExtensionItem {
  readonly name: string;
  readonly params: ReadonlyArray<readonly [name: string, value: string | null]>;
}

// RFC 7230 §3.2.6 tchar, quoted-string's qdtext and quoted-pair, and OWS.
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const QDTEXT = /[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]/;
const QUOTED_PAIR_CHAR = /[\t \x21-\x7e\x80-\xff]/;

/**
 * Parses a `Sec-WebSocket-Extensions` value (several headers joined with commas are one value): a comma-separated
 * list of `name *( ";" param [ "=" ( token / quoted-string ) ] )`, with optional whitespace around the separators.
 * Empty list elements are skipped (RFC 7230 §7); an empty value is an empty list.
 * @throws InvalidExtensionsError when the value does not follow the grammar, or a quoted value is not a token
 *   once unquoted (RFC 6455 §9.1)
 */
export function parseExtensions(header: string): ExtensionItem[] {
  const items: ExtensionItem[] = [];
  let pos = 0;
  const fail = (what: string): never => {
    throw new InvalidExtensionsError(header, `${what} at offset ${pos}`);
  };
  const skipOws = (): void => {
    while (pos < header.length && (header[pos] === ' ' || header[pos] === '\t')) pos++;
  };
  const token = (): string => {
    const start = pos;
    while (pos < header.length && TCHAR.test(header[pos]!)) pos++;
    if (pos === start) fail('expected a token');
    return header.slice(start, pos);
  };
  const quoted = (): string => {
    pos++; // opening DQUOTE
    let value = '';
    for (;;) {
      const c = header[pos];
      if (c === undefined) return fail('unterminated quoted string');
      if (c === '"') break;
      if (c === '\\') {
        const escaped = header[pos + 1];
        if (escaped === undefined || !QUOTED_PAIR_CHAR.test(escaped)) fail('invalid quoted pair');
        value += escaped;
        pos += 2;
      } else {
        if (!QDTEXT.test(c)) fail('invalid character in quoted string');
        value += c;
        pos++;
      }
    }
    pos++; // closing DQUOTE
    // RFC 6455 §9.1: a quoted value must still be a token once unescaped.
    if (!TOKEN.test(value)) fail('quoted value is not a token');
    return value;
  };

  for (;;) {
    skipOws();
    if (pos === header.length) return items;
    if (header[pos] === ',') {
      pos++;
      continue;
    }
    const name = token();
    const params: Array<readonly [string, string | null]> = [];
    skipOws();
    while (header[pos] === ';') {
      pos++;
      skipOws();
      const param = token();
      skipOws();
      let value: string | null = null;
      if (header[pos] === '=') {
        pos++;
        skipOws();
        value = header[pos] === '"' ? quoted() : token();
        skipOws();
      }
      params.push([param, value]);
    }
    items.push({ name, params });
    if (pos < header.length && header[pos] !== ',') fail('expected "," or ";"');
  }
}

/** The four parameters of one permessage-deflate offer or response; `true` is `client_max_window_bits` without value. */
interface DeflateOfferParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | null;
  clientMaxWindowBits: number | true | null;
}

// RFC 7692 §7.1.2.1: "a decimal integer value without leading zeroes between 8 and 15, inclusive".
const WINDOW_BITS = /^(?:[89]|1[0-5])$/;

/**
 * Reads the parameters of one permessage-deflate item, or returns why it is unacceptable: an unknown or repeated
 * parameter, or a bad value (RFC 7692 §7.1: such an offer must be declined, such a response fails the connection).
 */
function readDeflateParams(item: ExtensionItem, allowBareClientBits: boolean): DeflateOfferParams | string {
  const result: DeflateOfferParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: null,
    clientMaxWindowBits: null,
  };
  const seen = new Set<string>();
  for (const [rawName, value] of item.params) {
    const name = rawName.toLowerCase();
    if (seen.has(name)) return `duplicate parameter ${name}`;
    seen.add(name);
    switch (name) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        // RFC 7692 §7.1.1: these parameters have no value.
        if (value !== null) return `parameter ${name} takes no value`;
        if (name === 'server_no_context_takeover') result.serverNoContextTakeover = true;
        else result.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits':
        if (value === null || !WINDOW_BITS.test(value)) return `invalid value for ${name}: ${String(value)}`;
        result.serverMaxWindowBits = Number(value);
        break;
      case 'client_max_window_bits':
        // RFC 7692 §7.1.2.2: the value is optional in an offer, required in a response.
        if (value === null && allowBareClientBits) result.clientMaxWindowBits = true;
        else if (value === null || !WINDOW_BITS.test(value)) return `invalid value for ${name}: ${String(value)}`;
        else result.clientMaxWindowBits = Number(value);
        break;
      default:
        return `unknown parameter ${name}`;
    }
  }
  return result;
}

function isDeflate(item: ExtensionItem): boolean {
  return item.name.toLowerCase() === PERMESSAGE_DEFLATE;
}

function formatDeflate(p: DeflateOfferParams): string {
  let out = PERMESSAGE_DEFLATE;
  if (p.serverNoContextTakeover) out += '; server_no_context_takeover';
  if (p.clientNoContextTakeover) out += '; client_no_context_takeover';
  if (p.serverMaxWindowBits !== null) out += `; server_max_window_bits=${p.serverMaxWindowBits}`;
  if (p.clientMaxWindowBits === true) out += '; client_max_window_bits';
  else if (p.clientMaxWindowBits !== null) out += `; client_max_window_bits=${p.clientMaxWindowBits}`;
  return out;
}

/** The outcome of a server-side negotiation: the response header value and the agreed parameters. */
export interface DeflateAgreement {
  /** The value of the response's `Sec-WebSocket-Extensions` header. */
  readonly response: string;
  /** The parameters from the server's point of view (local = server). */
  readonly params: DeflateParams;
}

/**
 * Server side: picks the first acceptable permessage-deflate offer of the client's header (RFC 7692 §5.1, §7.1).
 * An offer with an unknown or repeated parameter or a bad value is declined and the next one is tried; other
 * extensions are ignored. The response always carries `server_max_window_bits` (the configured value, or fewer
 * bits if the client asked for fewer), and `client_max_window_bits` only when the client offered it (at most the
 * value it offered). `server_no_context_takeover` is honoured when asked; `client_no_context_takeover` is echoed
 * when offered and sent when configured.
 * @param offerHeader the request's `Sec-WebSocket-Extensions` value (`undefined` or empty when absent)
 * @param config the resolved compression settings, or `null` when compression is off
 * @returns the response and the agreed parameters, or `null` when no offer is accepted
 * @throws InvalidExtensionsError when the header is malformed (answer 400)
 */
export function negotiateDeflate(offerHeader: string | undefined, config: ResolvedCompression | null): DeflateAgreement | null {
  if (config === null || offerHeader === undefined) return null;
  for (const item of parseExtensions(offerHeader)) {
    if (!isDeflate(item)) continue;
    const offer = readDeflateParams(item, true);
    if (typeof offer === 'string') continue;
    const response: DeflateOfferParams = {
      // §7.1.1.1: an offered server_no_context_takeover must be in the response if the offer is accepted.
      serverNoContextTakeover: offer.serverNoContextTakeover || config.serverNoContextTakeover,
      // §7.1.1.2: the server may send client_no_context_takeover whether or not the client offered it.
      clientNoContextTakeover: offer.clientNoContextTakeover || config.clientNoContextTakeover,
      // §7.1.2.1: at most what the client asked; sent even when it did not ask, to tell it our window.
      serverMaxWindowBits: Math.min(config.serverMaxWindowBits, offer.serverMaxWindowBits ?? MAX_WINDOW_BITS),
      // §7.1.2.2: only when offered, and at most the offered value.
      clientMaxWindowBits:
        offer.clientMaxWindowBits === null
          ? null
          : Math.min(config.clientMaxWindowBits, offer.clientMaxWindowBits === true ? MAX_WINDOW_BITS : offer.clientMaxWindowBits),
    };
    return {
      response: formatDeflate(response),
      params: Object.freeze({
        localMaxWindowBits: response.serverMaxWindowBits!,
        remoteMaxWindowBits: (response.clientMaxWindowBits as number | null) ?? MAX_WINDOW_BITS,
        localNoContextTakeover: response.serverNoContextTakeover,
        remoteNoContextTakeover: response.clientNoContextTakeover,
      }),
    };
  }
  return null;
}

/**
 * What a client offers for a configuration. Window bits are offered only when set explicitly: by default the offer
 * is exactly `permessage-deflate; client_max_window_bits` (RFC 7692 §7.1.2.2: "I can use a smaller window if you
 * ask"), and the client's compressor still uses at most `clientMaxWindowBits`.
 */
function clientOffer(config: ResolvedCompression): DeflateOfferParams {
  return {
    serverNoContextTakeover: config.serverNoContextTakeover,
    clientNoContextTakeover: config.clientNoContextTakeover,
    serverMaxWindowBits: config.windowBitsSet.server ? config.serverMaxWindowBits : null,
    clientMaxWindowBits: config.windowBitsSet.client ? config.clientMaxWindowBits : true,
  };
}

/**
 * Client side: the value of the request's `Sec-WebSocket-Extensions` header.
 * @returns `permessage-deflate; client_max_window_bits` with the default settings, plus
 *   `server_no_context_takeover` / `client_no_context_takeover` when configured, `server_max_window_bits=N` when
 *   `serverMaxWindowBits` is set, and `client_max_window_bits=N` when `clientMaxWindowBits` is set; `null` when
 *   compression is off (send no header)
 */
export function deflateOffer(config: ResolvedCompression | null): string | null {
  return config === null ? null : formatDeflate(clientOffer(config));
}

/**
 * Client side: checks the server's `Sec-WebSocket-Extensions` response against the offer that `deflateOffer(config)`
 * made (RFC 7692 §7.1) and returns the agreed parameters from the client's point of view (local = client).
 * @param responseHeader the response's header value (`undefined` or empty when absent: no extension)
 * @returns the parameters, or `null` when the server accepted no extension
 * @throws InvalidExtensionsError when the header is malformed, names an extension that was not offered, repeats
 *   permessage-deflate, has an unknown, repeated or invalid parameter, omits `server_no_context_takeover` or
 *   `server_max_window_bits` that the client asked for, or grants a larger window than asked
 */
export function acceptDeflateResponse(responseHeader: string | undefined, config: ResolvedCompression | null): DeflateParams | null {
  if (responseHeader === undefined) return null;
  const items = parseExtensions(responseHeader);
  if (items.length === 0) return null;
  const refuse = (reason: string): never => {
    throw new InvalidExtensionsError(responseHeader, reason);
  };
  if (config === null) return refuse('no extension was offered');
  const [item, extra] = items as [ExtensionItem, ExtensionItem | undefined];
  if (!isDeflate(item)) return refuse(`extension ${item.name} was not offered`);
  if (extra !== undefined) return refuse(isDeflate(extra) ? `${PERMESSAGE_DEFLATE} accepted twice` : `extension ${extra.name} was not offered`);
  const got = readDeflateParams(item, false);
  if (typeof got === 'string') return refuse(got);
  const offer = clientOffer(config);
  // §7.1.1.1: a server accepting server_no_context_takeover must say so.
  if (offer.serverNoContextTakeover && !got.serverNoContextTakeover) refuse('server_no_context_takeover was offered but not accepted');
  // §7.1.2.1: a server accepting server_max_window_bits=N must answer with N or fewer.
  if (offer.serverMaxWindowBits !== null) {
    if (got.serverMaxWindowBits === null) refuse('server_max_window_bits was offered but not accepted');
    else if (got.serverMaxWindowBits > offer.serverMaxWindowBits) refuse(`server_max_window_bits=${got.serverMaxWindowBits} exceeds the ${offer.serverMaxWindowBits} offered`);
  }
  // §7.1.2.2: client_max_window_bits in a response must not exceed an offered value. (The offer always has the
  // parameter, so a response with it is never "not offered".)
  const offeredClientBits = offer.clientMaxWindowBits === true ? MAX_WINDOW_BITS : (offer.clientMaxWindowBits as number);
  if (got.clientMaxWindowBits !== null && (got.clientMaxWindowBits as number) > offeredClientBits) {
    refuse(`client_max_window_bits=${String(got.clientMaxWindowBits)} exceeds the ${offeredClientBits} offered`);
  }
  return Object.freeze({
    // Our compressor never uses more than configured, even when the server allows more.
    localMaxWindowBits: Math.min(config.clientMaxWindowBits, (got.clientMaxWindowBits as number | null) ?? MAX_WINDOW_BITS),
    remoteMaxWindowBits: got.serverMaxWindowBits ?? MAX_WINDOW_BITS,
    // §7.1.1.2: an offered client_no_context_takeover binds the client even if the server does not echo it.
    localNoContextTakeover: got.clientNoContextTakeover || offer.clientNoContextTakeover,
    remoteNoContextTakeover: got.serverNoContextTakeover,
  });
}
