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
import type { Limits } from '../config.js';
import { isFieldValue, isToken, trimOws, type HeaderField } from './handshake-headers.js';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
const EMPTY = Buffer.alloc(0);
/** Smallest owned buffer; grows by doubling so that appends cost O(1) amortized. */
const MIN_CAPACITY = 256;

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
    const window = this.buf.subarray(0, Math.min(this.end, start + limit));
    const lf = this.scanned < window.length ? window.indexOf(LF, this.scanned) : -1;
    if (lf === -1) {
      if (this.end - start > limit) {
        // Report the line's real length when its end is already here, else what has been buffered so far.
        const late = this.buf.subarray(0, this.end).indexOf(LF, start + limit);
        throw new HandshakeLimitError(kind, limit, (late === -1 ? this.end : late + 1) - start);
      }
      this.scanned = window.length;
      return null;
    }
    if (lf === start || this.buf[lf - 1] !== CR) {
      throw new HandshakeError('invalid line ending: a bare LF (lines must end with CRLF)');
    }
    this.start = this.scanned = lf + 1;
    return this.buf.subarray(start, lf - 1);
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
  private startLine: string | null = null;
  private readonly fields: HeaderField[] = [];

  constructor(
    private readonly limits: Limits,
    private readonly startKind: StartLineKind,
  ) {}

  /**
   * Parses whatever complete lines are buffered.
   * @returns the head when its final empty line has been read, else `null`
   * @throws HandshakeLimitError over a limit; HandshakeError (400) for a malformed line
   */
  read(): Head | null {
    const { maxLineLength, maxNumHeaders } = this.limits;
    if (this.startLine === null) {
      const line = this.bytes.readLine(maxLineLength, this.startKind);
      if (line === null) return null;
      this.startLine = line.toString('latin1');
    }
    for (;;) {
      const line = this.bytes.readLine(maxLineLength, 'header-line');
      if (line === null) return null;
      if (line.length === 0) return { startLine: this.startLine, fields: this.fields };
      if (this.fields.length === maxNumHeaders) {
        throw new HandshakeLimitError('num-headers', maxNumHeaders, maxNumHeaders + 1);
      }
      this.fields.push(parseHeaderLine(line));
    }
  }
}

/**
 * One `name: value` field line (RFC 9112 §5): the name is a token with no whitespace before the colon, the value
 * is trimmed of OWS and holds no control character except HTAB.
 * @throws HandshakeError (400) for obs-fold, a missing colon, a bad name or a bad value
 */
export function parseHeaderLine(line: Buffer): HeaderField {
  // RFC 9112 §5.2: obs-fold (a line starting with SP or HTAB) is obsolete; a server may reject it with 400.
  if (line[0] === SP || line[0] === HTAB) {
    throw new HandshakeError(`obsolete line folding in header line ${shown(line.toString('latin1'))}`);
  }
  const colon = line.indexOf(COLON);
  const name = line.toString('latin1', 0, colon === -1 ? line.length : colon);
  // RFC 9112 §5.1: no whitespace is allowed between the field name and the colon (the token check refuses it).
  if (colon === -1 || !isToken(name)) {
    throw new HandshakeError(`invalid header line ${shown(line.toString('latin1'))}`);
  }
  const value = line.toString('latin1', colon + 1);
  if (!isFieldValue(value)) throw new HandshakeError(`invalid value of header ${name}: ${shown(value)}`);
  return [name, trimOws(value)];
}
