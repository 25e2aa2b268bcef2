/** RFC 6455 §7.4.1 close codes, plus the registered 1012-1014. */
export const CloseCode = {
  NORMAL_CLOSURE: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  NO_STATUS_RCVD: 1005,
  ABNORMAL_CLOSURE: 1006,
  INVALID_DATA: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
  TLS_HANDSHAKE: 1015,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** The lowest and highest close codes reserved for libraries, frameworks and applications (RFC 6455 §7.4.2). */
export const APPLICATION_CLOSE_CODE_MIN = 3000;
export const APPLICATION_CLOSE_CODE_MAX = 4999;

/**
 * A server that sends a handshake refusal in-band (option `refusals`) accepts the handshake and closes at once with
 * this plus the HTTP status: 4401 for 401, 4403 for 403. Clients read 4400-4499 as a refusal (see the client SDK).
 */
export const REFUSAL_CLOSE_CODE_OFFSET = 4000;

/** Codes defined by RFC 6455 (and registered since) that may appear in a close frame on the wire. */
const WIRE_CODES: ReadonlySet<number> = new Set([
  CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY, CloseCode.PROTOCOL_ERROR, CloseCode.UNSUPPORTED_DATA,
  CloseCode.INVALID_DATA, CloseCode.POLICY_VIOLATION, CloseCode.MESSAGE_TOO_BIG, CloseCode.MANDATORY_EXTENSION,
  CloseCode.INTERNAL_ERROR, CloseCode.SERVICE_RESTART, CloseCode.TRY_AGAIN_LATER, CloseCode.BAD_GATEWAY,
]);

/**
 * Whether `code` may be sent or received in a close frame: 1000-1003, 1007-1014 and 3000-4999.
 * 1005, 1006 and 1015 are reported locally and never sent (RFC 6455 §7.4.1).
 */
export function isWireCloseCode(code: number): boolean {
  return WIRE_CODES.has(code) || (code >= APPLICATION_CLOSE_CODE_MIN && code <= APPLICATION_CLOSE_CODE_MAX);
}
