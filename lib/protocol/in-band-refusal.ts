/**
 * In-band refusals: a browser's page never sees the HTTP status of a refused handshake (it gets a close with 1006,
 * the same as for a server that is down), so a server may instead accept the handshake and close at once with
 * 4000 + status and the refusal's message as reason. This builds those bytes: the 101 and an unmasked close frame,
 * written together, so that the client reads the refusal before anything else.
 */
import { REFUSAL_CLOSE_CODE_OFFSET } from './close-codes.js';
import { MAX_CLOSE_REASON, Opcode } from './frame.js';
import { closePayload, encodeFrame } from './frame-writer.js';
import { acceptResponseHead, reasonPhrase } from './handshake-response.js';
import { truncateUtf8 } from './utf8.js';

/** The statuses a server may send in-band: client errors (RFC 9110 §15.5); 5xx and 503 limits stay HTTP. */
const FIRST_CLIENT_ERROR = 400;
const LAST_CLIENT_ERROR = 499;

/** Whether a refusal with this HTTP status can be sent in-band (400-499). */
export function isInBandStatus(status: number): boolean {
  return Number.isInteger(status) && status >= FIRST_CLIENT_ERROR && status <= LAST_CLIENT_ERROR;
}

/** The close code of an in-band refusal: 4000 + status (4401 for 401). */
export function refusalCloseCode(status: number): number {
  return REFUSAL_CLOSE_CODE_OFFSET + status;
}

/** What an in-band refusal needs. */
export interface InBandRefusalOptions {
  /** The client's `Sec-WebSocket-Key`. */
  readonly key: string;
  /**
   * The subprotocol the 101 names: one the client offered, when it offered any (a browser fails a 101 without one,
   * and would see 1006 instead of the refusal); none when `null` or absent.
   */
  readonly protocol?: string | null;
  /** The HTTP status of the refusal, 400-499. */
  readonly status: number;
  /** What the client is told, as the close reason (cut to 123 bytes); the status's reason phrase when empty. */
  readonly message: string;
  /** The `Server` header of the 101; `null` sends none. */
  readonly serverHeader: string | null;
}

/**
 * The bytes of an in-band refusal: a 101 with no extension (and `protocol`, if any), then a close frame with
 * 4000 + status and the message as reason. The server ends the stream after them (RFC 6455 §7.1.1).
 * @throws RangeError for a status outside 400-499
 * @throws ConfigError for a bad key or Server header, as `acceptResponseHead`
 */
export function inBandRefusal(options: InBandRefusalOptions): Buffer {
  if (!isInBandStatus(options.status)) throw new RangeError(`an in-band refusal needs a status from 400 to 499; got ${options.status}`);
  const head = acceptResponseHead({ key: options.key, protocol: options.protocol ?? null, extensions: null, serverHeader: options.serverHeader });
  return Buffer.concat([Buffer.from(head, 'latin1'), refusalCloseFrame(options.status, options.message)]);
}

/**
 * The close frame of an in-band refusal alone: 4000 + status, and `message` (the status's reason phrase when empty)
 * cut to 123 bytes. Over HTTP/2 it follows a `:status 200` on the stream instead of a 101.
 * @throws RangeError for a status outside 400-499
 */
export function refusalCloseFrame(status: number, message: string): Buffer {
  if (!isInBandStatus(status)) throw new RangeError(`an in-band refusal needs a status from 400 to 499; got ${status}`);
  const reason = truncateUtf8(message === '' ? reasonPhrase(status) : message, MAX_CLOSE_REASON);
  return Buffer.concat(encodeFrame(Opcode.CLOSE, closePayload(refusalCloseCode(status), reason)));
}
