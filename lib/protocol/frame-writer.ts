/**
 * RFC 6455 §5.2 frame serialization. The header is allocated on its own and the payload is sent after it as a
 * separate buffer (with `writev` or inside cork/uncork), so a payload is never copied just to prepend 2-14 bytes.
 * Only a client copies its payload, to mask it (RFC 6455 §5.3) without touching the caller's buffer.
 */
import {
  FIN_BIT,
  LENGTH_16_MARKER,
  LENGTH_64_MARKER,
  MASK_BIT,
  MAX_LENGTH_16,
  MAX_LENGTH_7,
  Opcode,
  RSV1_BIT,
  TWO_POW_32,
} from './frame.js';
import { MASK_KEY_LENGTH, applyMask } from './mask.js';

const BASE_HEADER = 2;

/** What to put in a frame header besides the payload length. */
export interface FrameOptions {
  /** Final fragment of the message. @default true */
  readonly fin?: boolean;
  /** RSV1: set on the first frame of a compressed message (RFC 7692 §6). @default false */
  readonly rsv1?: boolean;
  /** The 4-byte masking key of a client frame, or null for a server frame. @default null */
  readonly maskKey?: Uint8Array | null;
}

/**
 * Builds the header of a frame with the minimal length encoding: 7 bits up to 125, 16 bits up to 65535, else
 * 64 bits; followed by the masking key when one is given.
 * @param payloadLength a safe integer of bytes
 */
export function frameHeader(opcode: number, payloadLength: number, options: FrameOptions = {}): Buffer {
  const maskKey = options.maskKey ?? null;
  const lengthBytes = payloadLength <= MAX_LENGTH_7 ? 0 : payloadLength <= MAX_LENGTH_16 ? 2 : 8;
  const header = Buffer.allocUnsafe(BASE_HEADER + lengthBytes + (maskKey === null ? 0 : MASK_KEY_LENGTH));
  header[0] = (options.fin === false ? 0 : FIN_BIT) | (options.rsv1 === true ? RSV1_BIT : 0) | opcode;
  const maskBit = maskKey === null ? 0 : MASK_BIT;
  if (lengthBytes === 0) {
    header[1] = maskBit | payloadLength;
  } else if (lengthBytes === 2) {
    header[1] = maskBit | LENGTH_16_MARKER;
    header.writeUInt16BE(payloadLength, BASE_HEADER);
  } else {
    header[1] = maskBit | LENGTH_64_MARKER;
    header.writeUInt32BE(Math.floor(payloadLength / TWO_POW_32), BASE_HEADER);
    header.writeUInt32BE(payloadLength >>> 0, BASE_HEADER + 4);
  }
  if (maskKey !== null) {
    const at = BASE_HEADER + lengthBytes;
    header[at] = maskKey[0]!;
    header[at + 1] = maskKey[1]!;
    header[at + 2] = maskKey[2]!;
    header[at + 3] = maskKey[3]!;
  }
  return header;
}

/**
 * Serializes one frame as `[header]` or `[header, payload]`. Without a masking key the payload is the caller's
 * buffer itself (do not modify it until it is written); with one it is a masked copy.
 */
export function encodeFrame(opcode: number, payload: Buffer, options: FrameOptions = {}): Buffer[] {
  const header = frameHeader(opcode, payload.length, options);
  if (payload.length === 0) return [header];
  const maskKey = options.maskKey ?? null;
  if (maskKey === null) return [header, payload];
  const masked = Buffer.allocUnsafe(payload.length);
  applyMask(payload, 0, maskKey, 0, masked, 0, payload.length);
  return [header, masked];
}

/** Strings up to this many UTF-16 code units (at most 3 072 UTF-8 bytes) may go as one buffer (`encodeTextFrame`). */
export const SINGLE_BUFFER_TEXT_MAX = 1024;

/**
 * An unmasked, uncompressed text frame in one buffer: the header and the string's UTF-8 written after it. For small
 * server messages this spares the separate payload buffer (`Buffer.from`), the header's own allocation and one chunk
 * in the outgoing batch, which would copy both into one buffer anyway.
 * @param text at most `SINGLE_BUFFER_TEXT_MAX` code units, so that its length fits in 16 bits
 */
export function encodeTextFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const headerLength = length <= MAX_LENGTH_7 ? BASE_HEADER : BASE_HEADER + 2;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = FIN_BIT | Opcode.TEXT;
  if (headerLength === BASE_HEADER) {
    frame[1] = length;
  } else {
    frame[1] = LENGTH_16_MARKER;
    frame.writeUInt16BE(length, BASE_HEADER);
  }
  frame.write(text, headerLength);
  return frame;
}

/** The payload of a close frame: the 2-byte code then the UTF-8 reason (RFC 6455 §5.5.1). */
export function closePayload(code: number, reason: string): Buffer {
  const reasonLength = Buffer.byteLength(reason);
  const payload = Buffer.allocUnsafe(2 + reasonLength);
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload;
}
