/**
 * RFC 6455 §5.2 frame parsing over a list of received chunks with an offset: an explicit, numbered state machine
 * that returns early whenever it lacks bytes, so a frame split across any number of reads parses the same way.
 * It hands out views into the received chunks and copies only a header or a control payload that straddles
 * chunks. Frame-level rules (reserved bits and opcodes, control frames, masking, the 64-bit length) are checked
 * here; message-level rules (fragmentation, size, UTF-8) belong to `Connection`.
 */
import { ProtocolError } from '../errors.js';
import {
  FIN_BIT,
  LENGTH_16_MARKER,
  LENGTH_64_MARKER,
  LENGTH_BITS,
  MASK_BIT,
  MAX_CONTROL_PAYLOAD,
  OPCODE_BITS,
  Opcode,
  RSV1_BIT,
  RSV2_BIT,
  RSV3_BIT,
  TWO_POW_32,
  isControlOpcode,
  type Side,
} from './frame.js';
import { MASK_KEY_LENGTH, unmaskInPlace } from './mask.js';

/** The parser's states, in the order a frame goes through them. */
export const ParseState = {
  /** First two bytes: FIN, RSV1-3, opcode, MASK, 7-bit length. */
  INFO: 0,
  /** 16-bit extended payload length. */
  LENGTH_16: 1,
  /** 64-bit extended payload length. */
  LENGTH_64: 2,
  /** 4-byte masking key. */
  MASK_KEY: 3,
  /** The header is complete; the next call to `readHeader()` returns it. */
  HEADER_DONE: 4,
  /** Payload bytes, taken with `readPayloadPiece()` or `readPayloadWhole()`. */
  PAYLOAD: 5,
} as const;
export type ParseState = (typeof ParseState)[keyof typeof ParseState];

/** The header of the frame being parsed. One object per parser, overwritten by each frame: copy what you keep. */
export interface FrameHeader {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  masked: boolean;
  /** Declared payload length in bytes (up to 2**63 - 1, so not always a safe integer; compare, do not add). */
  length: number;
}

/** What the parser needs to know about the connection. */
export interface FrameParserOptions {
  /** This endpoint's side: a server requires masked frames, a client unmasked ones (RFC 6455 §5.1). */
  readonly side: Side;
  /** Whether an extension that defines RSV1 (permessage-deflate) was negotiated. */
  readonly allowRsv1: boolean;
}

/** Opcodes that RFC 6455 §5.2 defines; the others (0x3-0x7, 0xB-0xF) are reserved. */
const KNOWN_OPCODES: ReadonlySet<number> = new Set(Object.values(Opcode));

/** The high 32 bits of a 64-bit length must leave the most significant bit clear (RFC 6455 §5.2). */
const HIGH_BIT = 0x80000000;
/** The longest header field read at once: the 64-bit length. */
const LONGEST_FIELD = 8;
const EMPTY = Buffer.alloc(0);
// Shared by every parser: both are filled and read within one synchronous call, so no parser needs its own. A
// per-connection Buffer, even a small slice of Node's pool, costs each idle connection its JS object and pins the
// pool's 8 KiB slabs that it shares with short-lived buffers (handshake responses).
/** The current frame's masking key, written from `maskWord` just before a payload piece is unmasked. */
const SHARED_MASK_KEY = Buffer.alloc(MASK_KEY_LENGTH);
/** Header fields that straddle chunks are copied here and read at once. */
const SHARED_SCRATCH = Buffer.alloc(LONGEST_FIELD);
/**
 * Chunks shorter than this that arrive while others wait are copied together into one buffer of COALESCE_CAPACITY
 * bytes: a Buffer per chunk costs about 100 bytes of heap, so 64 KiB waiting in 1-byte TCP reads would hold
 * several MiB although `bufferedAmount` says 64 KiB.
 */
const COALESCE_BELOW = 1024;
const COALESCE_CAPACITY = 16_384;

/** Incremental frame parser: `push()` chunks, then `readHeader()` and the payload readers until they return null. */
export class FrameParser {
  private readonly chunks: Buffer[] = [];
  /** Offset of the first unread byte in `chunks[0]`. */
  private offset = 0;
  private buffered = 0;
  /** The buffer that small chunks are being copied into (the last of `chunks` is a view of it), or null. */
  private tail: Buffer | null = null;
  private tailEnd = 0;
  private state: ParseState = ParseState.INFO;
  private readonly header: FrameHeader = { fin: false, rsv1: false, opcode: 0, masked: false, length: 0 };
  /** The current frame's masking key, as a big-endian 32-bit word. */
  private maskWord = 0;
  /** Payload bytes of the current frame not yet handed out, and how many were (for the mask phase). */
  private remaining = 0;
  private payloadPosition = 0;
  /**
   * Where `take()` made its bytes readable: a chunk (no copy) or the shared scratch buffer (across chunks). Reset
   * once the header is read, so that an idle connection does not keep its last chunk alive.
   */
  private source: Buffer = EMPTY;
  private sourcePosition = 0;

  constructor(private readonly options: FrameParserOptions) {}

  /**
   * Buffers a received chunk; nothing is parsed until a reader is called. The parser takes ownership of the
   * chunk: masked payloads are unmasked in place.
   */
  push(chunk: Buffer): void {
    const length = chunk.length;
    if (length === 0) return;
    this.buffered += length;
    const chunks = this.chunks;
    // A chunk parsed at once (the common case) is never copied: only chunks that wait behind others are.
    if (length >= COALESCE_BELOW || chunks.length === 0) {
      this.tail = null;
      chunks.push(chunk);
      return;
    }
    let tail = this.tail;
    const last = chunks.length - 1;
    if (tail !== null && this.tailEnd + length <= tail.length) {
      // The last chunk is a view of the tail ending at tailEnd: extend it.
      const start = this.tailEnd - chunks[last]!.length;
      chunk.copy(tail, this.tailEnd);
      this.tailEnd += length;
      chunks[last] = tail.subarray(start, this.tailEnd);
      return;
    }
    tail = this.tail = Buffer.allocUnsafe(COALESCE_CAPACITY);
    chunk.copy(tail, 0);
    this.tailEnd = length;
    chunks.push(tail.subarray(0, length));
  }

  /** Received bytes not yet handed out as header fields or payload. */
  get bufferedAmount(): number {
    return this.buffered;
  }

  /** Payload bytes of the current frame still to come (0 between frames). */
  get payloadRemaining(): number {
    return this.remaining;
  }

  /** Drops everything buffered; later reads see an empty stream (RFC 6455 §7.1.7: discard after failing). */
  clear(): void {
    this.chunks.length = 0;
    this.tail = null;
    this.offset = 0;
    this.buffered = 0;
  }

  /**
   * Parses header bytes until the next frame's header is complete.
   * @returns the header (a reused object), or null when more bytes are needed
   * @throws ProtocolError when the header breaks a frame-level rule of RFC 6455 §5.2 or RFC 7692 §6
   */
  readHeader(): FrameHeader | null {
    const header = this.header;
    for (;;) {
      switch (this.state) {
        case ParseState.INFO: {
          if (!this.take(2)) return null;
          const b0 = this.source[this.sourcePosition]!;
          const b1 = this.source[this.sourcePosition + 1]!;
          header.fin = (b0 & FIN_BIT) !== 0;
          header.rsv1 = (b0 & RSV1_BIT) !== 0;
          header.opcode = b0 & OPCODE_BITS;
          header.masked = (b1 & MASK_BIT) !== 0;
          const length7 = b1 & LENGTH_BITS;
          this.checkInfo(b0, length7);
          if (length7 === LENGTH_16_MARKER) this.state = ParseState.LENGTH_16;
          else if (length7 === LENGTH_64_MARKER) this.state = ParseState.LENGTH_64;
          else {
            header.length = length7;
            this.state = this.afterLength();
          }
          break;
        }
        case ParseState.LENGTH_16:
          if (!this.take(2)) return null;
          header.length = this.source.readUInt16BE(this.sourcePosition);
          this.state = this.afterLength();
          break;
        case ParseState.LENGTH_64: {
          if (!this.take(LONGEST_FIELD)) return null;
          // Two 32-bit halves: JavaScript shifts are 32-bit, so `hi << 32` would be wrong (see undici #4875).
          const high = this.source.readUInt32BE(this.sourcePosition);
          if ((high & HIGH_BIT) !== 0) throw new ProtocolError('64-bit payload length with the most significant bit set');
          header.length = high * TWO_POW_32 + this.source.readUInt32BE(this.sourcePosition + 4);
          this.state = this.afterLength();
          break;
        }
        case ParseState.MASK_KEY:
          if (!this.take(MASK_KEY_LENGTH)) return null;
          this.maskWord = this.source.readUInt32BE(this.sourcePosition);
          this.state = ParseState.HEADER_DONE;
          break;
        case ParseState.HEADER_DONE:
          this.source = EMPTY;
          this.remaining = header.length;
          this.payloadPosition = 0;
          this.state = header.length > 0 ? ParseState.PAYLOAD : ParseState.INFO;
          return header;
        default:
          throw new Error('readHeader() called before the payload of the previous frame was read');
      }
    }
  }

  /**
   * Takes the payload bytes of the current frame that are buffered in the first chunk: a view, unmasked in place.
   * Call it until `payloadRemaining` is 0.
   * @returns a non-empty piece, or null when no payload byte is buffered
   */
  readPayloadPiece(): Buffer | null {
    if (this.buffered === 0) return null;
    const chunk = this.chunks[0]!;
    const count = Math.min(this.remaining, chunk.length - this.offset);
    const piece = chunk.subarray(this.offset, this.offset + count);
    this.advance(count);
    this.payloadTaken(piece);
    return piece;
  }

  /**
   * Takes the whole remaining payload of the current frame (a control frame), copying only when it straddles
   * chunks. Returns an empty buffer for an empty payload.
   * @returns the payload, or null when part of it is not buffered yet
   */
  readPayloadWhole(): Buffer | null {
    const count = this.remaining;
    if (this.buffered < count) return null;
    if (count === 0) return EMPTY;
    const first = this.chunks[0]!;
    let payload: Buffer;
    if (first.length - this.offset >= count) {
      payload = first.subarray(this.offset, this.offset + count);
      this.advance(count);
    } else {
      payload = Buffer.allocUnsafe(count);
      this.copyOut(payload, count);
    }
    this.payloadTaken(payload);
    return payload;
  }

  /** RFC 6455 §5.2 and §5.5, RFC 7692 §6: the rules that the first two bytes decide. */
  private checkInfo(b0: number, length7: number): void {
    const { opcode } = this.header;
    if ((b0 & RSV2_BIT) !== 0) throw new ProtocolError('RSV2 set without a negotiated extension');
    if ((b0 & RSV3_BIT) !== 0) throw new ProtocolError('RSV3 set without a negotiated extension');
    if (!KNOWN_OPCODES.has(opcode)) throw new ProtocolError(`reserved opcode 0x${opcode.toString(16)}`);
    const control = isControlOpcode(opcode);
    if (this.header.rsv1) {
      if (!this.options.allowRsv1) throw new ProtocolError('RSV1 set without a negotiated extension');
      // RFC 7692 §6.1: only the first frame of a compressed data message carries RSV1.
      if (control) throw new ProtocolError('RSV1 set on a control frame');
      if (opcode === Opcode.CONTINUATION) throw new ProtocolError('RSV1 set on a continuation frame');
    }
    if (control) {
      if (!this.header.fin) throw new ProtocolError('fragmented control frame');
      if (length7 > MAX_CONTROL_PAYLOAD) throw new ProtocolError('control frame payload over 125 bytes');
    }
    // RFC 6455 §5.1: a client masks every frame; a server masks none.
    if (this.options.side === 'server') {
      if (!this.header.masked) throw new ProtocolError('unmasked frame from client');
    } else if (this.header.masked) {
      throw new ProtocolError('masked frame from server');
    }
  }

  private afterLength(): ParseState {
    return this.header.masked ? ParseState.MASK_KEY : ParseState.HEADER_DONE;
  }

  private payloadTaken(payload: Buffer): void {
    if (this.header.masked) {
      SHARED_MASK_KEY.writeUInt32BE(this.maskWord, 0);
      unmaskInPlace(payload, SHARED_MASK_KEY, this.payloadPosition);
    }
    this.payloadPosition += payload.length;
    this.remaining -= payload.length;
    if (this.remaining === 0) this.state = ParseState.INFO;
  }

  /**
   * Makes `count` bytes readable at `source[sourcePosition]`: a position in the first chunk when it holds them
   * (no copy), else a copy into the scratch buffer.
   * @returns false when fewer than `count` bytes are buffered
   */
  private take(count: number): boolean {
    if (this.buffered < count) return false;
    const first = this.chunks[0]!;
    if (first.length - this.offset >= count) {
      this.source = first;
      this.sourcePosition = this.offset;
      this.advance(count);
    } else {
      this.copyOut(SHARED_SCRATCH, count);
      this.source = SHARED_SCRATCH;
      this.sourcePosition = 0;
    }
    return true;
  }

  /** Copies the next `count` buffered bytes (which straddle chunks) into `target` and consumes them. */
  private copyOut(target: Buffer, count: number): void {
    let copied = 0;
    while (copied < count) {
      const chunk = this.chunks[0]!;
      const n = Math.min(count - copied, chunk.length - this.offset);
      chunk.copy(target, copied, this.offset, this.offset + n);
      copied += n;
      this.advance(n);
    }
  }

  /** Consumes `count` bytes of the first chunk (at most what it holds). */
  private advance(count: number): void {
    this.offset += count;
    this.buffered -= count;
    if (this.offset === this.chunks[0]!.length) {
      this.chunks.shift();
      this.offset = 0;
      // The tail can only be extended while it is the last chunk; once consumed, it is released.
      if (this.chunks.length === 0) this.tail = null;
    }
  }
}
