/**
 * The default message parser, and the check every parser's result goes through. The wire format is JSON text:
 * `{ "event": "name", "data": <any>, "id": <string | number, optional> }`; replies have the same shape.
 */
import type { MessageParser, ParsedMessage } from './websockets-options.interface.js';

/** A message that the parser refused; its message is what the client is told. */
export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
  constructor(
    message: string,
    /** The message's `id`, when it could be read, so that the refusal still correlates. */
    readonly id?: string | number,
  ) {
    super(message);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

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
  const { event, data, id } = value as Record<string, unknown>;
  const validId = isId(id) ? id : undefined;
  if (id !== undefined && validId === undefined) throw new InvalidMessageError('"id" must be a string or a number');
  if (typeof event !== 'string' || event === '') throw new InvalidMessageError('a message needs an "event" string', validId);
  return validId === undefined ? { event, data } : { event, data, id: validId };
}

/**
 * The default parser: JSON text, or a binary message holding UTF-8 JSON (as `@nestjs/platform-ws` accepts).
 * @throws InvalidMessageError for invalid UTF-8 or JSON
 */
export const parseJsonMessage: MessageParser = (data) => {
  let text: string;
  if (typeof data === 'string') text = data;
  else {
    try {
      text = utf8.decode(data);
    } catch {
      throw new InvalidMessageError('a binary message must hold UTF-8 JSON');
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidMessageError('invalid JSON');
  }
  return checkParsedMessage(value);
};
