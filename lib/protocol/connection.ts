/**
 * The sans-I/O WebSocket connection once the opening handshake is done: bytes in, events and bytes out
 * (RFC 6455 §5-§7). It owns no socket, timer or clock. The I/O layer drives it like this:
 *
 * ```ts
 * conn.receiveData(chunk);                      // or conn.receiveEof() when the peer ends the stream
 * for (let e = conn.nextEvent(); e; e = conn.nextEvent()) dispatch(e);   // stop pulling when the app is slow
 * for (const out of conn.dataToSend()) out === SEND_EOF ? socket.end() : socket.write(out);
 * if (conn.closeExpected()) armCloseTimer();
 * ```
 *
 * Parsing is pull-based: `receiveData()` only buffers, and `nextEvent()` parses just far enough to produce one
 * event, so nothing is parsed or inflated for an application that does not take its events.
 *
 * Over 400 lines because the three parts of RFC 6455 it implements (data framing §5, the closing handshake §7, the
 * state machine §4-§7 that ties them) read the same state; frames, messages and UTF-8 are in their own files.
 */
import { InvalidStateError, InvalidUtf8Error, MessageTooBigError, ProtocolError, TooManyFragmentsError } from '../errors.js';
import { CloseCode, isWireCloseCode } from './close-codes.js';
import type { MessageCodec } from './compression.js';
import { MAX_CLOSE_REASON, MAX_CONTROL_PAYLOAD, Opcode, isControlOpcode, type Side } from './frame.js';
import { FrameParser } from './frame-parser.js';
import { SINGLE_BUFFER_TEXT_MAX, closePayload, encodeFrame, encodeTextFrame } from './frame-writer.js';
import { MASK_KEY_LENGTH, defaultMaskSource } from './mask.js';
import { MessageBuffer } from './message-buffer.js';
import type { PreparedMessage } from './prepared-message.js';
import { Utf8Validator, decodeUtf8, truncateUtf8 } from './utf8.js';

/** Connection states (RFC 6455 §4, §7). A `Connection` starts OPEN: the opening handshake is handled elsewhere. */
export const State = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
export type State = (typeof State)[keyof typeof State];

/** Sentinel in `dataToSend()`: half-close the TCP stream (`socket.end()`). */
export const SEND_EOF: unique symbol = Symbol('SEND_EOF');

/** What `nextEvent()` produces. */
export type ConnectionEvent =
  | { readonly type: 'text'; readonly data: string }
  | { readonly type: 'binary'; readonly data: Buffer }
  | { readonly type: 'ping'; readonly data: Buffer }
  | { readonly type: 'pong'; readonly data: Buffer }
  /** A close frame was received; `code` is 1005 when it had none. */
  | { readonly type: 'close'; readonly code: number; readonly reason: string };

/** A close code and reason, as sent or received. */
export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

/** The errors for which this endpoint fails the connection; each carries its `closeCode` (1002, 1007, 1008, 1009). */
export type ConnectionFailure = ProtocolError | InvalidUtf8Error | MessageTooBigError | TooManyFragmentsError;

/** Options of a {@link Connection}. */
export interface ConnectionOptions {
  /** This endpoint's side: it decides the masking rules and who ends the TCP stream first. */
  side: Side;
  /** Largest incoming message in bytes, on the wire and after decompression (`Limits.maxMessageSize`). */
  maxMessageSize: number;
  /**
   * Most frames in one incoming data message (`Limits.maxFragments`); one more fails the connection with 1008.
   * @default no limit
   */
  maxFragments?: number;
  /** The permessage-deflate codec when the extension was negotiated (RSV1 is then allowed); null or absent otherwise. */
  codec?: MessageCodec | null;
  /** Outgoing messages shorter than this many bytes are sent uncompressed. @default 0 (compress all when a codec is set) */
  compressionThreshold?: number;
  /** Fills the first 4 bytes of `into` with a fresh masking key (client only). @default a pooled `crypto.randomFillSync` */
  createMask?: (into: Buffer) => void;
}

const EMPTY = Buffer.alloc(0);
/** Close code for a stream that ended without a close frame; never sent (RFC 6455 §7.1.5). */
const ABNORMAL = CloseCode.ABNORMAL_CLOSURE;
/** No message is being assembled. */
const NO_MESSAGE = -1;

/**
 * One WebSocket connection's protocol state machine.
 *
 * Incoming chunks passed to `receiveData()` become the connection's: masked payloads are unmasked in place, and
 * binary events may be views into them. Outgoing payloads are queued without a copy on a server: do not modify a
 * buffer passed to a `send*()` method until `dataToSend()` has returned it and it has been written.
 */
export class Connection {
  /** This endpoint's side. */
  readonly side: Side;
  private received: CloseInfo | null = null;
  private sent: CloseInfo | null = null;
  private failedWith: ConnectionFailure | null = null;

  private currentState: State = State.OPEN;
  private readonly parser: FrameParser;
  private readonly maxMessageSize: number;
  private readonly maxFragments: number;
  private readonly codec: MessageCodec | null;
  private readonly compressionThreshold: number;
  private readonly createMask: (into: Buffer) => void;
  /** Client side only (a server never masks); from the shared pool, see FrameParser. */
  private readonly maskKey: Buffer | null;
  /** Made on first use: an empty array is 32 bytes that every idle connection would keep. */
  private outgoing: Array<Buffer | typeof SEND_EOF> | null = null;

  private eofReceived = false;
  private eofSent = false;
  /** After a close frame or a failure, no further byte is parsed (RFC 6455 §7.1.7, §5.5.1). */
  private discarding = false;

  /** The frame whose header was parsed and whose payload is still being read. */
  private inFrame = false;
  private frameOpcode = 0;
  private frameFin = false;
  /** The data message being assembled: its opcode (or NO_MESSAGE), compression, declared size and frame count. */
  private messageOpcode = NO_MESSAGE;
  private messageCompressed = false;
  private messageSize = 0;
  private messageFrames = 0;
  /** A message that arrived whole in one piece, kept as a view (the common case: no copy, no assembly). */
  private whole: Buffer | null = null;
  /** A message that arrives in pieces; made when one does (most never do) and dropped at its end. */
  private assembly: MessageBuffer | null = null;
  /** Uncompressed text in pieces is validated as it arrives, so that the first invalid byte fails at once. */
  private utf8: Utf8Validator | null = null;

  /** Starts in the OPEN state. */
  constructor(options: ConnectionOptions) {
    this.side = options.side;
    this.maxMessageSize = options.maxMessageSize;
    this.maxFragments = options.maxFragments ?? Number.MAX_SAFE_INTEGER;
    this.codec = options.codec ?? null;
    this.compressionThreshold = options.compressionThreshold ?? 0;
    this.createMask = options.createMask ?? defaultMaskSource;
    this.maskKey = options.side === 'client' ? Buffer.allocUnsafe(MASK_KEY_LENGTH) : null;
    this.parser = new FrameParser({ side: options.side, allowRsv1: this.codec !== null });
  }

  /** Code and reason of the peer's close frame, once one was parsed (1005 when it had no code). */
  get closeReceived(): CloseInfo | null {
    return this.received;
  }

  /** Code and reason of the close frame this endpoint sent or echoed (1005 for an empty one). */
  get closeSent(): CloseInfo | null {
    return this.sent;
  }

  /** The error that made this endpoint fail the connection (1002, 1007, 1009), kept for logging. */
  get failure(): ConnectionFailure | null {
    return this.failedWith;
  }

  /** The connection's state. */
  get state(): State {
    return this.currentState;
  }

  /**
   * Buffers bytes received from the peer; no parsing happens here. Call `nextEvent()` (or `eventsReceived()`)
   * and then `dataToSend()` afterwards. Ignored after `receiveEof()`, after failing, and after a close frame.
   */
  receiveData(chunk: Buffer): void {
    if (this.eofReceived || this.discarding) return;
    this.parser.push(chunk);
  }

  /**
   * The peer ended the TCP stream. The end is processed in order, after the buffered bytes: call `nextEvent()`
   * and `dataToSend()` afterwards.
   */
  receiveEof(): void {
    if (this.eofReceived) return;
    this.eofReceived = true;
    if (this.discarding) this.discardReachedEof();
  }

  /**
   * Incoming bytes buffered and not yet parsed; the I/O layer pauses reading above a high-water mark. Payload
   * bytes already taken into a partial message are not counted (that message is bounded by `maxMessageSize`), so
   * pulling until `nextEvent()` returns undefined always brings this down and cannot deadlock on a large message.
   */
  get bufferedAmount(): number {
    return this.parser.bufferedAmount;
  }

  /**
   * Parses just far enough to produce the next event. A ping is answered (a pong is queued) when it is parsed.
   * Never throws because of the peer's bytes: a violation fails the connection (see `failure` and `dataToSend()`).
   * @returns the event, or undefined when more bytes are needed or nothing more will come
   */
  nextEvent(): ConnectionEvent | undefined {
    if (this.discarding) return undefined;
    try {
      return this.parse();
    } catch (error) {
      this.failWith(error);
      return undefined;
    }
  }

  /** Pulls every event that the buffered bytes make available. */
  eventsReceived(): ConnectionEvent[] {
    const events: ConnectionEvent[] = [];
    for (let event = this.nextEvent(); event !== undefined; event = this.nextEvent()) events.push(event);
    return events;
  }

  /**
   * Queues one whole text message: a string, or a Buffer that already holds UTF-8 (not checked).
   * @throws InvalidStateError unless the connection is OPEN
   */
  sendText(data: string | Buffer): void {
    this.ensureOpen('send a text message');
    // A small string from a server that does not compress: header and UTF-8 in one buffer (see encodeTextFrame).
    if (typeof data === 'string' && data.length <= SINGLE_BUFFER_TEXT_MAX && this.maskKey === null && this.codec === null) {
      (this.outgoing ??= []).push(encodeTextFrame(data));
      return;
    }
    this.sendMessage(Opcode.TEXT, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  /**
   * Queues one whole binary message.
   * @throws InvalidStateError unless the connection is OPEN
   */
  sendBinary(data: Buffer): void {
    this.ensureOpen('send a binary message');
    this.sendMessage(Opcode.BINARY, data);
  }

  /**
   * Queues a message prepared once for many connections. A server writes the shared frame as it is (no copy, no
   * header of its own) unless this connection compresses the message; a client frames it itself (it masks).
   * @throws InvalidStateError unless the connection is OPEN
   */
  sendPrepared(message: PreparedMessage): void {
    this.ensureOpen('send a message');
    const payload = message.payload;
    if (this.maskKey !== null || (this.codec !== null && payload.length >= this.compressionThreshold)) {
      this.sendMessage(message.opcode, payload);
      return;
    }
    (this.outgoing ??= []).push(message.frame);
  }

  /**
   * Queues a ping (RFC 6455 §5.5.2).
   * @throws InvalidStateError unless the connection is OPEN; RangeError when `data` is over 125 bytes
   */
  sendPing(data: Buffer = EMPTY): void {
    this.ensureOpen('send a ping');
    this.sendControl(Opcode.PING, data);
  }

  /**
   * Queues an unsolicited pong (RFC 6455 §5.5.3); pings are answered automatically.
   * @throws InvalidStateError unless the connection is OPEN; RangeError when `data` is over 125 bytes
   */
  sendPong(data: Buffer = EMPTY): void {
    this.ensureOpen('send a pong');
    this.sendControl(Opcode.PONG, data);
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2): queues a close frame and moves to CLOSING. Without a code
   * the close frame is empty and `closeSent.code` is 1005.
   * @throws InvalidStateError unless the connection is OPEN
   * @throws RangeError for a code not allowed on the wire, a reason without a code, or a reason over 123 bytes
   */
  sendClose(code?: number, reason = ''): void {
    this.ensureOpen('send a close frame');
    if (code === undefined) {
      if (reason !== '') throw new RangeError('a close reason requires a close code');
      this.queueClose(EMPTY, { code: CloseCode.NO_STATUS_RCVD, reason: '' });
      return;
    }
    checkCloseArguments(code, reason);
    this.queueClose(closePayload(code, reason), { code, reason });
  }

  /**
   * Fails the connection (RFC 6455 §7.1.7): sends a close frame if OPEN (none for 1006), makes a server end the
   * TCP stream at once, and discards every further byte. A client waits for the server to end the stream.
   * @param code a code allowed on the wire, or 1006 to send no close frame (the stream is already gone)
   * @param reason at most 123 UTF-8 bytes; a longer one is cut
   * @throws RangeError for another code
   */
  fail(code: number, reason = ''): void {
    if (code !== ABNORMAL && !isWireCloseCode(code)) throw new RangeError(`close code ${code} cannot be sent`);
    if (this.currentState === State.OPEN && code !== ABNORMAL) {
      const shortReason = truncateUtf8(reason, MAX_CLOSE_REASON);
      this.queueClose(closePayload(code, shortReason), { code, reason: shortReason });
    }
    if (this.side === 'server') this.sendEof();
    this.discard();
  }

  /**
   * Drains the outgoing bytes: frame headers and payloads as separate buffers, then `SEND_EOF` when the TCP
   * stream should be ended (always last).
   */
  dataToSend(): Array<Buffer | typeof SEND_EOF> {
    const out = this.outgoing;
    this.outgoing = null;
    return out ?? [];
  }

  /**
   * Whether the I/O layer should arm the close timeout: a close frame was sent (or echoed) and the TCP stream has
   * not ended yet. A server then waits for the client's EOF; a client waits for the server to end the stream.
   */
  closeExpected(): boolean {
    return this.currentState === State.CLOSING;
  }

  /**
   * The code to report when the connection closes: the peer's (1005 when its close frame had none); when no close
   * frame was received, the one this endpoint sent (so that a connection failed with 1009 or closed for a slow
   * consumer with 1013 reports that code, not a dropped network's); 1006 when neither side sent one.
   */
  get closeCode(): number {
    if (this.received !== null) return this.received.code;
    return this.sent === null ? ABNORMAL : this.sent.code;
  }

  /** The reason that goes with `closeCode`. */
  get closeReason(): string {
    if (this.received !== null) return this.received.reason;
    return this.sent === null ? '' : this.sent.reason;
  }

  // --- parsing ---------------------------------------------------------------------------------------------

  private parse(): ConnectionEvent | undefined {
    const parser = this.parser;
    for (;;) {
      if (!this.inFrame) {
        const header = parser.readHeader();
        if (header === null) return this.needMoreBytes();
        this.startFrame(header.opcode, header.fin, header.rsv1, header.length);
      }
      if (isControlOpcode(this.frameOpcode)) {
        const payload = parser.readPayloadWhole();
        if (payload === null) return this.needMoreBytes();
        this.inFrame = false;
        return this.controlFrame(payload);
      }
      while (parser.payloadRemaining > 0) {
        const piece = parser.readPayloadPiece();
        if (piece === null) return this.needMoreBytes();
        this.dataPiece(piece);
      }
      this.inFrame = false;
      if (this.frameFin) return this.endMessage();
    }
  }

  /** Called when the parser lacks bytes: at the end of the stream, that is an abnormal closure. */
  private needMoreBytes(): undefined {
    if (this.eofReceived) this.fail(ABNORMAL);
    return undefined;
  }

  /** Message-level rules for a new frame (RFC 6455 §5.4), and the size limit on its declared length. */
  private startFrame(opcode: number, fin: boolean, rsv1: boolean, length: number): void {
    if (!isControlOpcode(opcode)) {
      if (opcode === Opcode.CONTINUATION) {
        if (this.messageOpcode === NO_MESSAGE) throw new ProtocolError('continuation frame without a message to continue');
      } else {
        if (this.messageOpcode !== NO_MESSAGE) throw new ProtocolError('new data frame inside a fragmented message');
        this.messageOpcode = opcode;
        this.messageCompressed = rsv1;
      }
      // Counted before the frame's payload: a flood of empty continuation frames is bounded like any other.
      if (++this.messageFrames > this.maxFragments) throw new TooManyFragmentsError(this.maxFragments);
      // Checked before any payload byte is taken; `length` may exceed 2**53 but the comparison still holds.
      if (length > this.maxMessageSize - this.messageSize) {
        throw new MessageTooBigError(this.messageSize + length, this.maxMessageSize);
      }
      this.messageSize += length;
    }
    this.inFrame = true;
    this.frameOpcode = opcode;
    this.frameFin = fin;
  }

  private dataPiece(piece: Buffer): void {
    const remaining = this.parser.payloadRemaining;
    // Fast path: a whole message in one piece is kept as it is and judged at its end.
    if (this.frameFin && remaining === 0 && piece.length === this.messageSize && this.assembly === null) {
      this.whole = piece;
      return;
    }
    const assembly = (this.assembly ??= new MessageBuffer(this.maxMessageSize));
    assembly.append(piece, remaining, this.frameFin);
    if (this.messageOpcode === Opcode.TEXT && !this.messageCompressed) {
      // Judge the bytes as they arrive, so that the first invalid byte fails the connection without waiting for
      // the rest of the frame or message.
      (this.utf8 ??= new Utf8Validator()).advance(assembly.bytes, assembly.size);
    }
  }

  private endMessage(): ConnectionEvent {
    const opcode = this.messageOpcode;
    const compressed = this.messageCompressed;
    let payload: Buffer;
    if (this.whole !== null) {
      payload = this.whole;
      this.whole = null;
    } else if (this.assembly !== null) {
      payload = this.assembly.take();
      this.assembly = null;
      if (opcode === Opcode.TEXT && !compressed) {
        this.resetMessage();
        this.utf8!.finish(payload.length);
        return { type: 'text', data: payload.toString('utf8') };
      }
    } else {
      payload = EMPTY;
    }
    this.resetMessage();
    if (compressed) {
      const inflated = this.inflate(payload);
      return opcode === Opcode.TEXT
        ? { type: 'text', data: decodeUtf8(inflated, 'text message') }
        : { type: 'binary', data: inflated };
    }
    if (opcode === Opcode.TEXT) return { type: 'text', data: decodeUtf8(payload, 'text message') };
    return { type: 'binary', data: payload };
  }

  private resetMessage(): void {
    this.messageOpcode = NO_MESSAGE;
    this.messageSize = 0;
    this.messageFrames = 0;
  }

  /** RFC 7692 §7.2.2; the inflated size counts against the same message budget. */
  private inflate(data: Buffer): Buffer {
    let inflated: Buffer | null;
    try {
      inflated = this.codec!.decompress(data, this.maxMessageSize);
    } catch (cause) {
      throw new ProtocolError('invalid compressed data', { cause });
    }
    // The codec stops soon after the limit (a bomb is never inflated whole), so only "more than the limit" is known.
    if (inflated === null) throw new MessageTooBigError(null, this.maxMessageSize, true);
    return inflated;
  }

  private controlFrame(payload: Buffer): ConnectionEvent {
    switch (this.frameOpcode) {
      case Opcode.PING:
        // RFC 6455 §5.5.2: answer with a pong carrying the same data, unless a close was received (we then
        // discard) or the stream is already ended.
        if (!this.eofSent) this.queueFrame(Opcode.PONG, payload, false);
        return { type: 'ping', data: payload };
      case Opcode.PONG:
        return { type: 'pong', data: payload };
      default:
        return this.closeFrame(payload);
    }
  }

  /** RFC 6455 §5.5.1, §7.1.5: parse, echo if we have not sent a close yet, and stop reading. */
  private closeFrame(payload: Buffer): ConnectionEvent {
    let code: number = CloseCode.NO_STATUS_RCVD;
    let reason = '';
    if (payload.length === 1) throw new ProtocolError('close frame payload of 1 byte');
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isWireCloseCode(code)) throw new ProtocolError(`close code ${code} is not allowed on the wire`);
      reason = decodeUtf8(payload.subarray(2), 'close reason');
    }
    this.received = { code, reason };
    if (this.currentState === State.OPEN) {
      // Echo the peer's close payload as received: re-serializing an empty one would invent code 1005.
      this.queueClose(payload, this.received);
    }
    // RFC 6455 §7.1.1: the server ends the TCP stream first; the client waits for it.
    if (this.side === 'server') this.sendEof();
    this.discard();
    return { type: 'close', code, reason };
  }

  /** The one place where an error becomes a close code: typed errors carry theirs, anything else is 1011. */
  private failWith(error: unknown): void {
    if (
      error instanceof ProtocolError ||
      error instanceof InvalidUtf8Error ||
      error instanceof MessageTooBigError ||
      error instanceof TooManyFragmentsError
    ) {
      this.failedWith = error;
      this.fail(error.closeCode, error.message);
    } else {
      // Internal details may be security-sensitive: no reason on the wire.
      this.fail(CloseCode.INTERNAL_ERROR);
    }
  }

  /** Stops parsing for good: frees buffered bytes and any partial message. */
  private discard(): void {
    this.discarding = true;
    this.parser.clear();
    this.whole = null;
    this.assembly = null;
    this.utf8?.reset();
    if (this.eofReceived) this.discardReachedEof();
  }

  /** The peer ended the stream after we stopped reading: a client now ends its side too. */
  private discardReachedEof(): void {
    if (this.side === 'client') this.sendEof();
    this.currentState = State.CLOSED;
  }

  // --- sending ---------------------------------------------------------------------------------------------

  private ensureOpen(action: string): void {
    if (this.currentState !== State.OPEN) {
      const name = this.currentState === State.CLOSING ? 'CLOSING' : 'CLOSED';
      throw new InvalidStateError(`cannot ${action}: the connection is ${name}`);
    }
  }

  private sendMessage(opcode: number, payload: Buffer): void {
    const codec = this.codec;
    if (codec !== null && payload.length >= this.compressionThreshold) {
      this.queueFrame(opcode, codec.compress(payload), true);
    } else {
      this.queueFrame(opcode, payload, false);
    }
  }

  private sendControl(opcode: number, data: Buffer): void {
    if (data.length > MAX_CONTROL_PAYLOAD) {
      throw new RangeError(`control frame payload of ${data.length} bytes is over ${MAX_CONTROL_PAYLOAD} bytes`);
    }
    this.queueFrame(opcode, data, false);
  }

  private queueClose(payload: Buffer, sent: CloseInfo): void {
    this.queueFrame(Opcode.CLOSE, payload, false);
    this.sent = sent;
    this.currentState = State.CLOSING;
  }

  private queueFrame(opcode: number, payload: Buffer, rsv1: boolean): void {
    const maskKey = this.maskKey;
    if (maskKey !== null) this.createMask(maskKey);
    const outgoing = (this.outgoing ??= []);
    for (const buffer of encodeFrame(opcode, payload, { rsv1, maskKey })) outgoing.push(buffer);
  }

  private sendEof(): void {
    if (this.eofSent) return;
    this.eofSent = true;
    (this.outgoing ??= []).push(SEND_EOF);
  }
}

/** Validates what an application passes to `sendClose()`. */
function checkCloseArguments(code: number, reason: string): void {
  if (!isWireCloseCode(code)) {
    throw new RangeError(`close code ${code} cannot be sent: use 1000-1003, 1007-1014 or 3000-4999`);
  }
  const length = Buffer.byteLength(reason);
  if (length > MAX_CLOSE_REASON) {
    throw new RangeError(`close reason of ${length} bytes is over ${MAX_CLOSE_REASON} bytes`);
  }
}
