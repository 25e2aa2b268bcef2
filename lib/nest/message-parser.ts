/**
 * The default message parser, and the check every parser's result goes through. The wire format is JSON text:
 * `{ "event": "name", "data": <any>, "id": <string | number, optional> }`; replies have the same shape.
 *
 * The default parser bounds the nesting of a message before `JSON.parse` (`maxJsonDepth`): deflate turns 300 000
 * levels of brackets into a few hundred bytes, and what comes after the parser (validation, class-transformer,
 * `JSON.stringify` of a reply or of an exception's cause) recurses once per level, until it overflows the stack.
 * A refused message is answered with its `id` when one can be read from its top level (`readTopLevelId`).
 */
import { resolveGatewayLimits } from '../config/index.js';
import { InvalidMessageError, MessageTooDeepError } from '../errors.js';
import type { MessageParser, ParsedMessage } from './websockets-options.interface.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

function isId(value: unknown): value is string | number {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * Checks what a parser returned: an object with a string `event`, and an `id` that is a string or a finite number
 * when present.
 * @throws InvalidMessageError
 */
export function checkParsedMessage(value: unknown): ParsedMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidMessageError('a message must be a JSON object { "event": string, "data"?: any, "id"?: string | number }');
  }
  const { event, data, id, traceparent } = value as Record<string, unknown>;
  const validId = isId(id) ? id : undefined;
  if (id !== undefined && validId === undefined) throw new InvalidMessageError('"id" must be a string or a number');
  if (typeof event !== 'string' || event === '') throw new InvalidMessageError('a message needs an "event" string', validId);
  const message: ParsedMessage = validId === undefined ? { event, data } : { event, data, id: validId };
  // The W3C trace context a client may send with a message (OpenTelemetry makes the handler's span its child).
  if (typeof traceparent !== 'string') return message;
  const { tracestate } = value as Record<string, unknown>;
  return { ...message, traceparent, ...(typeof tracestate === 'string' ? { tracestate } : {}) };
}

/**
 * The index just past the string literal whose opening quote is at `start`, or -1 when it is not closed. It jumps
 * from quote to quote with `indexOf` (native, so long strings cost little) and counts the backslashes before each
 * one; each backslash is counted once, so the whole scan stays linear.
 */
function endOfString(text: string, start: number): number {
  let end = start;
  for (;;) {
    end = text.indexOf('"', end + 1);
    if (end === -1) return -1;
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return end + 1;
  }
}

/**
 * Whether JSON `text` nests arrays and objects more than `maxDepth` levels deep (the outermost value is level 1),
 * found without parsing: one pass that counts brackets outside strings and jumps over strings. Text shorter than
 * `2 * (maxDepth + 1)` characters cannot nest that deep (each level takes an opening and a closing bracket), so
 * it is not scanned: most messages cost nothing. Text that is not JSON may be answered either way (a closing
 * bracket too many stops the scan); `JSON.parse` refuses it then.
 */
export function exceedsJsonDepth(text: string, maxDepth: number): boolean {
  if (text.length < 2 * (maxDepth + 1)) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = endOfString(text, i);
      if (end === -1) return false;
      i = end - 1;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      if (--depth < 0) return false;
    }
  }
  return false;
}

function isJsonWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipWhitespace(text: string, i: number): number {
  while (isJsonWhitespace(text.charCodeAt(i))) i++;
  return i;
}

/** The index just past the JSON value that starts at `start` (skipped, not parsed), or -1 when it is not closed. */
function endOfValue(text: string, start: number): number {
  const first = text.charCodeAt(start);
  if (first === QUOTE) return endOfString(text, start);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === QUOTE) {
        const end = endOfString(text, i);
        if (end === -1) return -1;
        i = end - 1;
      } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
        depth++;
      } else if ((c === CLOSE_BRACKET || c === CLOSE_BRACE) && --depth === 0) {
        return i + 1;
      }
    }
    return -1;
  }
  // A number, true, false or null: up to the next delimiter.
  let i = start;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || isJsonWhitespace(c)) break;
    i++;
  }
  return i === start ? -1 : i;
}

function parseOrUndefined(literal: string): unknown {
  try {
    return JSON.parse(literal);
  } catch {
    return undefined;
  }
}

/**
 * The `id` of a JSON message that cannot be (or must not be) parsed whole: the value of the last `"id"` member of
 * the top-level object, when it is a string or a finite number. One linear pass that skips the other members'
 * values without building them, whatever their depth; it stops at the first member that is not well-formed and
 * keeps what it found before. The id of a message that is not a JSON object (or whose `id` member comes after the
 * malformed part) is not recovered.
 */
export function readTopLevelId(text: string): string | number | undefined {
  let i = skipWhitespace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACE) return undefined;
  let id: string | number | undefined;
  i++;
  for (;;) {
    i = skipWhitespace(text, i);
    if (text.charCodeAt(i) !== QUOTE) return id;
    const keyEnd = endOfString(text, i);
    if (keyEnd === -1) return id;
    const key = text.slice(i, keyEnd);
    i = skipWhitespace(text, keyEnd);
    if (text.charCodeAt(i) !== COLON) return id;
    i = skipWhitespace(text, i + 1);
    const valueEnd = endOfValue(text, i);
    if (valueEnd === -1) return id;
    if (key === '"id"' || (key.includes('\\') && parseOrUndefined(key) === 'id')) {
      const value = parseOrUndefined(text.slice(i, valueEnd));
      if (isId(value)) id = value;
    }
    i = skipWhitespace(text, valueEnd);
    if (text.charCodeAt(i) !== COMMA) return id;
    i++;
  }
}

/** What `createJsonMessageParser()` takes. */
export interface JsonMessageParserOptions {
  /**
   * Deepest nesting of arrays and objects accepted, the message itself being level 1; deeper is refused with
   * `MessageTooDeepError` before `JSON.parse`.
   * @default 64 (the module's and gateways' `maxJsonDepth`, or WEBSOCKETS_MAX_JSON_DEPTH, set it for the default parser)
   */
  readonly maxDepth?: number;
}

/**
 * Makes the default parser: JSON text, or a binary message holding UTF-8 JSON (as `@nestjs/platform-ws` accepts),
 * no deeper than `maxDepth`. Refusals carry the message's `id` when it can be read from the top level.
 * @throws ConfigError when `maxDepth` is not a positive integer
 */
export function createJsonMessageParser(options: JsonMessageParserOptions = {}): MessageParser {
  const { maxJsonDepth: maxDepth } = resolveGatewayLimits({ maxJsonDepth: options.maxDepth });
  return (data) => {
    let text: string;
    if (typeof data === 'string') text = data;
    else {
      try {
        text = utf8.decode(data);
      } catch {
        throw new InvalidMessageError('a binary message must hold UTF-8 JSON');
      }
    }
    if (exceedsJsonDepth(text, maxDepth)) throw new MessageTooDeepError(maxDepth, readTopLevelId(text));
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new InvalidMessageError('invalid JSON', readTopLevelId(text));
    }
    return checkParsedMessage(value);
  };
}

/**
 * The default parser with the default depth limit (64): JSON text, or a binary message holding UTF-8 JSON.
 * @throws InvalidMessageError for invalid UTF-8 or JSON, MessageTooDeepError for nesting deeper than 64 levels
 */
export const parseJsonMessage: MessageParser = createJsonMessageParser();
