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

/** Whether an opcode is a control opcode (close, ping, pong, and the reserved 0xB-0xF). */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/** Which side of the connection this endpoint is: it decides the masking rules (RFC 6455 §5.1). */
export type Side = 'server' | 'client';
