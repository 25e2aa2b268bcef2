/**
 * HTTP header fields of the opening handshake: the case-insensitive `HandshakeHeaders` view, the field syntax of
 * RFC 9110 §5 (tokens, field values, comma-separated lists) and the checks that keep generated headers from being
 * split (no CR, LF or other control characters can reach the wire).
 */
import { ConfigError } from '../errors.js';
import { describeSetting } from '../config/settings.js';

/** A header as received or to be sent: `[name, value]`, name in its original case. */
export type HeaderField = readonly [name: string, value: string];

/** Extra headers given by a caller: pairs (duplicates allowed) or a record. */
export type HeaderFields = ReadonlyArray<HeaderField> | Readonly<Record<string, string>>;

// RFC 9110 §5.6.2: token = 1*tchar.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 §5.5: field-value = *( VCHAR / obs-text / SP / HTAB ), i.e. no control character except HTAB.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// What this package sends: printable ASCII only, so that no encoding question and no header splitting can arise.
const SENT_VALUE = /^[\t\x20-\x7e]*$/;

/** Whether `value` is an RFC 9110 token (a header name, a method, a subprotocol name). */
export function isToken(value: string): boolean {
  return TOKEN.test(value);
}

/** Whether `value` is a valid received field value (obs-text allowed, as decoded with latin1). */
export function isFieldValue(value: string): boolean {
  return FIELD_VALUE.test(value);
}

/** Removes the optional whitespace (SP / HTAB) around a field value or list element (RFC 9110 §5.6.3). */
export function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value.charCodeAt(start) === 0x20 || value.charCodeAt(start) === 0x09)) start++;
  while (end > start && (value.charCodeAt(end - 1) === 0x20 || value.charCodeAt(end - 1) === 0x09)) end--;
  return value.slice(start, end);
}

/**
 * The elements of a comma-separated list header (RFC 9110 §5.6.1), whitespace trimmed, empty elements dropped.
 * Several field lines of the same name form one list.
 */
export function parseList(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    for (const element of value.split(',')) {
      const trimmed = trimOws(element);
      if (trimmed !== '') out.push(trimmed);
    }
  }
  return out;
}

/** Whether the list header lines contain `token`, compared ASCII case-insensitively (`Connection: keep-alive, Upgrade`). */
export function listHasToken(values: readonly string[], token: string): boolean {
  const wanted = token.toLowerCase();
  // Element by element in place (no split, no lowercased copies): this runs for every handshake.
  for (const value of values) {
    for (let from = 0; from <= value.length; ) {
      let to = value.indexOf(',', from);
      if (to === -1) to = value.length;
      let start = from;
      let end = to;
      while (start < end && isOws(value.charCodeAt(start))) start++;
      while (end > start && isOws(value.charCodeAt(end - 1))) end--;
      if (end - start === wanted.length && equalsAsciiLowercase(value, start, wanted)) return true;
      from = to + 1;
    }
  }
  return false;
}

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** Whether `value` at `start` holds `lower` (lowercase), comparing ASCII letters case-insensitively. */
function equalsAsciiLowercase(value: string, start: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let code = value.charCodeAt(start + i);
    if (code >= 0x41 && code <= 0x5a) code += 0x20;
    if (code !== lower.charCodeAt(i)) return false;
  }
  return true;
}

const NO_VALUES: readonly string[] = Object.freeze([]);

/**
 * Lowercased names asked for (`Sec-WebSocket-Key`, ...), so that a lookup does not allocate; bounded, since
 * applications may ask for any name.
 */
const LOWERCASE = new Map<string, string>();
const LOWERCASE_CACHE_SIZE = 64;

function lowercase(name: string): string {
  let lower = LOWERCASE.get(name);
  if (lower === undefined) {
    lower = name.toLowerCase();
    if (LOWERCASE.size < LOWERCASE_CACHE_SIZE) LOWERCASE.set(name, lower);
  }
  return lower;
}

/**
 * The header fields of a handshake request or response, looked up case-insensitively.
 * `get()` joins repeated fields with `", "` (RFC 9110 §5.3); use `getAll()` for fields that must appear once
 * and for `Set-Cookie`.
 */
export class HandshakeHeaders implements Iterable<HeaderField> {
  /**
   * The names in lower case, in field order. A handshake has a few dozen fields at most (`maxNumHeaders`), so a
   * scan costs less than building a Map per request.
   */
  private readonly names: string[] = [];

  constructor(private readonly fields: ReadonlyArray<HeaderField>) {
    for (const field of fields) this.names.push(field[0].toLowerCase());
  }

  /** The values of `name` joined with `", "`, or `undefined` when the field is absent. */
  get(name: string): string | undefined {
    const values = this.getAll(name);
    return values.length === 0 ? undefined : values.join(', ');
  }

  /** Every value of `name`, in order of appearance; empty when absent. */
  getAll(name: string): readonly string[] {
    const key = lowercase(name);
    let values: string[] | undefined;
    for (let i = 0; i < this.names.length; i++) {
      if (this.names[i] === key) (values ??= []).push(this.fields[i]![1]);
    }
    return values ?? NO_VALUES;
  }

  /** Whether at least one field line named `name` is present. */
  has(name: string): boolean {
    return this.names.includes(lowercase(name));
  }

  /** Number of field lines (repeated names count once per line). */
  get size(): number {
    return this.fields.length;
  }

  /** The field lines in order, names in their original case. */
  [Symbol.iterator](): Iterator<HeaderField> {
    return this.fields[Symbol.iterator]();
  }
}

/** Headers that change how a message is framed or whether the connection stays open (RFC 9112 §6, §9.6). */
const FRAMING = ['connection', 'content-length', 'transfer-encoding'];

/**
 * Headers that a handshake request or a 101 writes itself: extra headers may not set them, since a duplicate
 * would make the handshake ambiguous (RFC 6455 §4.1 / §4.2.2) or change how the message is framed.
 */
export const HANDSHAKE_HEADERS: ReadonlySet<string> = new Set([
  ...FRAMING,
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-accept',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

/**
 * Headers that a server's 101 writes itself: those of the handshake, and `Server`, which the `serverHeader` setting
 * owns (a second one from a hook would leave the client to guess which is true).
 */
export const RESPONSE_HEADERS: ReadonlySet<string> = new Set([...HANDSHAKE_HEADERS, 'server']);

/**
 * Headers that a refusal writes itself. `Upgrade` and `Sec-WebSocket-Version` are allowed: a 426 carries them
 * (RFC 9110 §15.5.22, RFC 6455 §4.4).
 */
export const REFUSAL_HEADERS: ReadonlySet<string> = new Set([...FRAMING, 'content-type', 'server']);

/** What to do instead of setting a reserved header that a setting owns. */
const OWNED_BY_SETTING: Readonly<Record<string, string>> = { server: `set it with ${describeSetting('serverHeader')}` };

/**
 * Serializes extra headers given by an application, refusing anything that could split or corrupt the message.
 * @throws ConfigError for a name that is not a token, a value with a control character or a non-ASCII character,
 *   or a header that the handshake writes itself
 */
export function serializeExtraHeaders(
  fields: HeaderFields | undefined,
  option: string,
  reserved: ReadonlySet<string> = HANDSHAKE_HEADERS,
): string {
  if (fields === undefined) return '';
  const pairs: ReadonlyArray<HeaderField> = Array.isArray(fields)
    ? (fields as ReadonlyArray<HeaderField>)
    : Object.entries(fields as Readonly<Record<string, string>>);
  let out = '';
  for (const [name, value] of pairs) {
    if (typeof name !== 'string' || !isToken(name)) {
      throw new ConfigError(`${option}: header name ${JSON.stringify(name)} is not an HTTP token`, option, name);
    }
    const lower = name.toLowerCase();
    if (reserved.has(lower)) {
      const instead = OWNED_BY_SETTING[lower];
      throw new ConfigError(`${option}: header ${name} is written by the handshake itself${instead === undefined ? '' : `; ${instead}`}`, option, name);
    }
    out += headerLine(name, value, option);
  }
  return out;
}

/**
 * One `name: value\r\n` line of a header this package writes.
 * @throws ConfigError when the value holds a control character or a non-ASCII character
 */
export function headerLine(name: string, value: string, option: string): string {
  if (typeof value !== 'string' || !SENT_VALUE.test(value)) {
    throw new ConfigError(
      `${option}: value of header ${name} must be printable ASCII; got ${JSON.stringify(value)}`,
      option,
      value,
    );
  }
  return `${name}: ${trimOws(value)}\r\n`;
}
