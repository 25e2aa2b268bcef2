/**
 * The incremental reader under the request and response parsers: it buffers bytes, cuts CRLF-terminated lines and
 * reads the head of an HTTP/1.1 message (start line, header lines, empty line) under the seed's limits.
 *
 * Cost is O(bytes read) however the input is chunked: a cursor remembers how far the current line has already been
 * searched for LF, so a head fed one byte at a time is never re-scanned (python-hyper/h11 `_receivebuffer.py`).
 * A line that grows past its limit without an LF fails as soon as the limit is passed, so a slow, endless line
 * costs at most the limit plus one chunk (python-websockets `StreamReader.read_line`).
 *
 * Lines must end in CRLF. A bare LF is refused (400), as python-websockets does: RFC 9112 §2.2 only allows (MAY) a
 * recipient to accept it, every WebSocket client and server sends CRLF, and one line ending means one way to read
 * the head (no request smuggling through a parser that disagrees with a proxy).
 */
import { HandshakeError, HandshakeLimitError, type HandshakeLimit } from '../errors.js';
import type { Limits } from '../config/index.js';
import { type HeaderField } from './handshake-headers.js';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
const EMPTY = Buffer.alloc(0);
/** Smallest owned buffer; grows by doubling so that appends cost O(1) amortized. */
const MIN_CAPACITY = 256;
/** RFC 9110 §5.6.2 tchar, by byte: `!#$%&'*+-.^_\`|~`, digits and letters. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;
const DEL = 0x7f;

/** A value shown in an error message: quoted, escaped and short, since the message may go into a 400 body. */
export function shown(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
}

/** The bytes of one message head: the start line and the header fields, as latin1 strings. */
export interface Head {
  readonly startLine: string;
  readonly fields: HeaderField[];
}

/** Buffers bytes and hands out lines and byte runs. Not exported from the package: the parsers wrap it. */
export class ByteReader {
  /** Holds the unread bytes `[start, end)`; a view of the caller's chunk until it must be kept across pushes. */
  private buf: Buffer = EMPTY;
  private end = 0;
  private start = 0;
  /** Index up to which the current line has been searched for LF (h11's cursor). */
  private scanned = 0;
  private owned = false;

  /** The buffer that `lineStart` and `readLineEnd()` index into (valid until the next `append`). */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Number of unread bytes. */
  get available(): number {
    return this.end - this.start;
  }

  /** Adds bytes; the first chunk after the buffer empties is used in place (no copy). */
  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.start === this.end) {
      this.buf = chunk;
      this.start = 0;
      this.end = chunk.length;
      this.scanned = 0;
      this.owned = false;
      return;
    }
    if (!this.owned || this.end + chunk.length > this.buf.length) this.reallocate(this.available + chunk.length);
    chunk.copy(this.buf, this.end);
    this.end += chunk.length;
  }

  /** Copies unread bytes that are still a view of a caller's chunk, so that the caller may reuse its buffer. */
  retain(): void {
    if (!this.owned && this.start < this.end) this.reallocate(this.available);
  }

  private reallocate(needed: number): void {
    const next = Buffer.allocUnsafe(Math.max(MIN_CAPACITY, needed * 2));
    this.buf.copy(next, 0, this.start, this.end);
    this.scanned -= this.start;
    this.end -= this.start;
    this.start = 0;
    this.buf = next;
    this.owned = true;
  }

  /**
   * The next line without its CRLF, or `null` when its LF has not arrived yet.
   * @param limit most bytes of the line, CRLF included
   * @throws HandshakeLimitError as soon as more than `limit` bytes are buffered without an LF among the first `limit`
   * @throws HandshakeError (400) for a line that ends in a bare LF
   */
  readLine(limit: number, kind: HandshakeLimit): Buffer | null {
    const start = this.start;
    const end = this.readLineEnd(limit, kind);
    return end === -1 ? null : this.buf.subarray(start, end);
  }

  /**
   * `readLine` without a view: the line is `buffer[start, end)`, where `start` is the `lineStart` read just before.
   * @returns the index of the line's CR, or -1 when its LF has not arrived yet
   */
  readLineEnd(limit: number, kind: HandshakeLimit): number {
    const start = this.start;
    // Bytes past `end` (spare capacity) are not ours: an LF found there counts as none.
    let lf = this.scanned < this.end ? this.buf.indexOf(LF, this.scanned) : -1;
    if (lf >= this.end) lf = -1;
    if (lf === -1 || lf >= start + limit) {
      if (this.end - start > limit) {
        // Report the line's real length when its end is already here, else what has been buffered so far.
        throw new HandshakeLimitError(kind, limit, (lf === -1 ? this.end : lf + 1) - start);
      }
      this.scanned = this.end;
      return -1;
    }
    if (lf === start || this.buf[lf - 1] !== CR) {
      throw new HandshakeError('invalid line ending: a bare LF (lines must end with CRLF)');
    }
    this.start = this.scanned = lf + 1;
    return lf - 1;
  }

  /** Where the next line starts in `buffer`. */
  get lineStart(): number {
    return this.start;
  }

  /** Up to `n` unread bytes, as a view. */
  take(n: number): Buffer {
    const count = Math.min(n, this.available);
    const out = this.buf.subarray(this.start, this.start + count);
    this.start += count;
    this.scanned = this.start;
    return out;
  }

  /** Every unread byte, as a view; the reader is empty afterwards. */
  takeAll(): Buffer {
    return this.take(this.available);
  }
}

/** Which start line a head begins with. */
export type StartLineKind = 'request-line' | 'status-line';

/**
 * Reads the head of one HTTP/1.1 message: a start line, header lines and an empty line, under `limits`.
 * Call `read()` after each `append()`; it returns the head once, when its empty line has arrived.
 */
export class HeadReader {
  readonly bytes = new ByteReader();
  private line: string | null = null;
  private readonly fields: HeaderField[] = [];

  constructor(
    private readonly limits: Limits,
    private readonly startKind: StartLineKind,
  ) {}

  /** The start line once it has been read (before the headers are complete), else `null`: check it early with this. */
  get startLine(): string | null {
    return this.line;
  }

  /**
   * Parses whatever complete lines are buffered.
   * @returns the head when its final empty line has been read, else `null`
   * @throws HandshakeLimitError over a limit; HandshakeError (400) for a malformed line
   */
  read(): Head | null {
    const { maxLineLength, maxNumHeaders } = this.limits;
    const bytes = this.bytes;
    if (this.line === null) {
      const start = bytes.lineStart;
      const end = bytes.readLineEnd(maxLineLength, this.startKind);
      if (end === -1) return null;
      this.line = bytes.buffer.toString('latin1', start, end);
    }
    for (;;) {
      const start = bytes.lineStart;
      const end = bytes.readLineEnd(maxLineLength, 'header-line');
      if (end === -1) return null;
      if (end === start) return { startLine: this.line, fields: this.fields };
      if (this.fields.length === maxNumHeaders) {
        throw new HandshakeLimitError('num-headers', maxNumHeaders, maxNumHeaders + 1);
      }
      this.fields.push(parseHeaderField(bytes.buffer, start, end));
    }
  }
}

/**
 * One `name: value` field line (RFC 9112 §5), `buf[start, end)`: the name is a token with no whitespace before the
 * colon, the value is trimmed of OWS and holds no control character except HTAB. Checked byte by byte: only the
 * name and the trimmed value become strings.
 * @throws HandshakeError (400) for obs-fold, a missing colon, a bad name or a bad value
 */
function parseHeaderField(buf: Buffer, start: number, end: number): HeaderField {
  // RFC 9112 §5.2: obs-fold (a line starting with SP or HTAB) is obsolete; a server may reject it with 400.
  if (buf[start] === SP || buf[start] === HTAB) {
    throw new HandshakeError(`obsolete line folding in header line ${shown(buf.toString('latin1', start, end))}`);
  }
  // RFC 9112 §5.1: the name is a token up to the colon; no whitespace is allowed before the colon.
  let colon = start;
  while (colon < end && TCHAR[buf[colon]!] === 1) colon++;
  if (colon === start || colon === end || buf[colon] !== COLON) {
    throw new HandshakeError(`invalid header line ${shown(buf.toString('latin1', start, end))}`);
  }
  const name = buf.toString('latin1', start, colon);
  // RFC 9110 §5.5: field-value = *( VCHAR / obs-text / SP / HTAB ): no control character except HTAB.
  for (let i = colon + 1; i < end; i++) {
    const c = buf[i]!;
    if ((c < SP && c !== HTAB) || c === DEL) {
      throw new HandshakeError(`invalid value of header ${name}: ${shown(buf.toString('latin1', colon + 1, end))}`);
    }
  }
  // RFC 9110 §5.6.3: optional whitespace around the value is not part of it.
  let from = colon + 1;
  let to = end;
  while (from < to && (buf[from] === SP || buf[from] === HTAB)) from++;
  while (to > from && (buf[to - 1] === SP || buf[to - 1] === HTAB)) to--;
  return [name, buf.toString('latin1', from, to)];
}
