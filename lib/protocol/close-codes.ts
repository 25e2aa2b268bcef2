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

/**
 * Whether `code` may be sent or received in a close frame: 1000-1003, 1007-1014 and 3000-4999.
 * 1005, 1006 and 1015 are reported locally and never sent (RFC 6455 §7.4.1).
 */
export function isWireCloseCode(code: number): boolean {
  // Ranges rather than a Set: a bundle that imports only CloseCode (the browser client) then carries nothing more.
  return (
    Number.isInteger(code) &&
    ((code >= CloseCode.NORMAL_CLOSURE && code <= CloseCode.UNSUPPORTED_DATA) ||
      (code >= CloseCode.INVALID_DATA && code <= CloseCode.BAD_GATEWAY) ||
      (code >= APPLICATION_CLOSE_CODE_MIN && code <= APPLICATION_CLOSE_CODE_MAX))
  );
}
