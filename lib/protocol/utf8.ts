/**
 * UTF-8 validation of text messages and close reasons (RFC 6455 §8.1: invalid UTF-8 fails the connection with
 * 1007). Node's native decoders do the work: `TextDecoder` with `{ fatal: true }` fed with `{ stream: true }`
 * throws on the piece holding the first invalid byte, even when a multi-byte sequence straddles pieces, and
 * `buffer.isUtf8` judges a complete buffer.
 */
import { isUtf8 } from 'node:buffer';
import { InvalidUtf8Error } from '../errors.js';

/**
 * Validates a text message's bytes as they are appended to one buffer, without decoding them: the message's string
 * is built once, at its end, and a message of a million one-byte fragments keeps no string per piece. Each call
 * judges the complete characters received so far with the native `buffer.isUtf8`, and the incomplete character at
 * the end (at most 3 bytes) with the rules of RFC 3629 §4, so the connection fails at the first invalid byte, even
 * when a multi-byte sequence straddles fragments or TCP reads.
 */
export class Utf8Validator {
  /** Bytes known to be valid UTF-8, ending on a character boundary. */
  private checked = 0;

  /**
   * Judges `bytes[0..end)`, of which the first bytes were judged by earlier calls.
   * @throws InvalidUtf8Error when the bytes so far are not a prefix of valid UTF-8
   */
  advance(bytes: Uint8Array, end: number): void {
    const from = this.checked;
    // The last character may be incomplete: back up over at most 3 continuation bytes to its lead byte.
    let lead = end - 1;
    while (lead > from && lead >= end - 3 && isContinuation(bytes[lead]!)) lead--;
    let complete = end;
    if (lead >= from && lead < end) {
      const length = sequenceLength(bytes[lead]!);
      if (length > end - lead) complete = lead;
    }
    if (complete > from && !isUtf8(bytes.subarray(from, complete))) throw new InvalidUtf8Error('invalid UTF-8 in text message');
    if (complete < end && !isValidPrefix(bytes, complete, end)) throw new InvalidUtf8Error('invalid UTF-8 in text message');
    this.checked = complete;
  }

  /**
   * The message ended at `end`: every byte must now be judged valid.
   * @throws InvalidUtf8Error when the message ends inside a multi-byte sequence
   */
  finish(end: number): void {
    const checked = this.checked;
    this.checked = 0;
    if (checked !== end) throw new InvalidUtf8Error('invalid UTF-8 in text message: truncated sequence at its end');
  }

  /** Forgets a partial message. */
  reset(): void {
    this.checked = 0;
  }
}

function isContinuation(byte: number): boolean {
  return (byte & 0xc0) === 0x80;
}

/** The length of the sequence that `lead` starts (RFC 3629 §4), or 1 for a byte that cannot start one (isUtf8 judges it). */
function sequenceLength(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 1;
}

/** Whether `bytes[at..end)`, a sequence cut short, can still become a valid character (RFC 3629 §4's second-byte ranges). */
function isValidPrefix(bytes: Uint8Array, at: number, end: number): boolean {
  const lead = bytes[at]!;
  if (at + 1 < end) {
    const second = bytes[at + 1]!;
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    if (second < low || second > high) return false;
  }
  for (let i = at + 2; i < end; i++) if (!isContinuation(bytes[i]!)) return false;
  return true;
}

/**
 * Decodes a complete buffer (a whole text message, or a close reason).
 * @throws InvalidUtf8Error naming `what` when the bytes are not valid UTF-8
 */
export function decodeUtf8(data: Buffer, what: string): string {
  if (!isUtf8(data)) throw new InvalidUtf8Error(`invalid UTF-8 in ${what}`);
  // toString() without an encoding is UTF-8 and goes straight to the decoder; with 'utf8' named, Node looks the
  // encoding up first (getEncodingOps: ~1% of a 32 B echo's profile).
  return data.toString();
}

/** Cuts `text` to at most `max` UTF-8 bytes without splitting a character (for close reasons). */
export function truncateUtf8(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let end = max;
  const bytes = Buffer.from(text, 'utf8');
  // Back up over continuation bytes (10xxxxxx) so the cut falls between characters.
  while ((bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.toString('utf8', 0, end);
}
