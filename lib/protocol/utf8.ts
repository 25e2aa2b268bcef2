/**
 * UTF-8 validation of text messages and close reasons (RFC 6455 §8.1: invalid UTF-8 fails the connection with
 * 1007). Node's native decoders do the work: `TextDecoder` with `{ fatal: true }` fed with `{ stream: true }`
 * throws on the piece holding the first invalid byte, even when a multi-byte sequence straddles pieces, and
 * `buffer.isUtf8` judges a complete buffer.
 */
import { isUtf8 } from 'node:buffer';
import { InvalidUtf8Error } from '../errors.js';

/**
 * Decodes a text message piece by piece as its bytes arrive, and fails at the first invalid byte instead of at the
 * end of the frame or message. The decoded text is kept so that the message's string is built only once.
 */
export class Utf8StreamDecoder {
  /**
   * Created on the first piece: most text messages arrive whole and never need it, and each decoder holds about
   * 460 bytes of native converter state, which would otherwise be paid by every idle connection.
   */
  private decoder: InstanceType<typeof TextDecoder> | null = null;
  private readonly parts: string[] = [];

  /**
   * Decodes the next piece of the message.
   * @throws InvalidUtf8Error when the bytes so far are not a prefix of valid UTF-8
   */
  write(piece: Uint8Array): void {
    let text: string;
    try {
      this.decoder ??= new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
      text = this.decoder.decode(piece, { stream: true });
    } catch (cause) {
      this.reset();
      throw new InvalidUtf8Error('invalid UTF-8 in text message', { cause });
    }
    if (text.length > 0) this.parts.push(text);
  }

  /**
   * Ends the message and returns its text; the decoder is then ready for the next message.
   * @throws InvalidUtf8Error when the message ends inside a multi-byte sequence
   */
  end(): string {
    let tail: string;
    try {
      tail = this.decoder === null ? '' : this.decoder.decode();
    } catch (cause) {
      this.reset();
      throw new InvalidUtf8Error('invalid UTF-8 in text message: truncated sequence at its end', { cause });
    }
    const parts = this.parts;
    const text = parts.length === 1 && tail === '' ? parts[0]! : parts.join('') + tail;
    parts.length = 0;
    return text;
  }

  /** Forgets a partial message (after a failure, the decoder is unusable until reset). */
  reset(): void {
    this.decoder = null;
    this.parts.length = 0;
  }
}

/**
 * Decodes a complete buffer (a whole text message, or a close reason).
 * @throws InvalidUtf8Error naming `what` when the bytes are not valid UTF-8
 */
export function decodeUtf8(data: Buffer, what: string): string {
  if (!isUtf8(data)) throw new InvalidUtf8Error(`invalid UTF-8 in ${what}`);
  return data.toString('utf8');
}
