/** RFC 6455 §5.2 frame constants and the frame shape shared by the parser and the writer. */

export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** RFC 6455 §5.5: control frames carry at most 125 bytes and are never fragmented. */
export const MAX_CONTROL_PAYLOAD = 125;
/** Largest close reason: 125 bytes minus the 2-byte code. */
export const MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2;

/**
 * The bits of the first two header bytes and the length encoding (RFC 6455 §5.2), shared by the parser and the
 * writer so that the two cannot disagree.
 */
export const FIN_BIT = 0x80;
export const RSV1_BIT = 0x40;
export const RSV2_BIT = 0x20;
export const RSV3_BIT = 0x10;
export const OPCODE_BITS = 0x0f;
export const MASK_BIT = 0x80;
export const LENGTH_BITS = 0x7f;
/** Largest payload that fits the 7-bit length field. */
export const MAX_LENGTH_7 = 125;
/** 7-bit length values that announce a 16-bit or a 64-bit extended length. */
export const LENGTH_16_MARKER = 126;
export const LENGTH_64_MARKER = 127;
export const MAX_LENGTH_16 = 0xffff;
/** A 64-bit length is read and written as two 32-bit halves: hi * 2 ** 32 + lo (JavaScript shifts are 32-bit). */
export const TWO_POW_32 = 2 ** 32;

/** Whether an opcode is a control opcode (close, ping, pong, and the reserved 0xB-0xF). */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/** Which side of the connection this endpoint is: it decides the masking rules (RFC 6455 §5.1). */
export type Side = 'server' | 'client';
