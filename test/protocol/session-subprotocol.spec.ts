/**
 * The session subprotocol and acknowledgement frames (see session-subprotocol.ts): what a client offers is read back
 * exactly, anything malformed reads as no request (such a client gets what a plain client gets), and an
 * acknowledgement is recognised without parsing JSON.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ackCount, ackFrame, sessionRequestOf, sessionSubprotocol, SESSION_SUBPROTOCOL_PREFIX } from '../../lib/protocol/session-subprotocol.js';
import { isToken } from '../../lib/protocol/handshake-headers.js';

const base64url = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);

describe('session subprotocol', () => {
  it('asks for a new session, or to resume one, and reads it back (property)', () => {
    expect(sessionRequestOf(['chat', sessionSubprotocol(null)])).toEqual({ resume: false });
    fc.assert(
      fc.property(base64url, base64url, fc.nat(), (id, secret, received) => {
        const offered = sessionSubprotocol({ id, secret, received });
        expect(isToken(offered)).toBe(true);
        expect(sessionRequestOf(['nestjs-websockets.auth', offered])).toEqual({ resume: true, id, secret, received });
      }),
    );
  });

  it('reads nothing from what does not ask, or asks in a malformed way', () => {
    for (const offered of [
      [],
      ['chat'],
      [`${SESSION_SUBPROTOCOL_PREFIX}old`],
      [`${SESSION_SUBPROTOCOL_PREFIX}a.b`],
      [`${SESSION_SUBPROTOCOL_PREFIX}a.b.1.2`],
      [`${SESSION_SUBPROTOCOL_PREFIX}a.b.01`],
      [`${SESSION_SUBPROTOCOL_PREFIX}a.b.-1`],
      [`${SESSION_SUBPROTOCOL_PREFIX}a!.b.1`],
      [`${SESSION_SUBPROTOCOL_PREFIX}.b.1`],
      [`${SESSION_SUBPROTOCOL_PREFIX}a.b.9999999999999999`],
    ]) {
      expect(sessionRequestOf(offered)).toBeNull();
    }
  });

  it('writes and reads acknowledgements', () => {
    expect(ackFrame(42)).toBe('{"event":"$ack","data":42}');
    expect(JSON.parse(ackFrame(0))).toEqual({ event: '$ack', data: 0 });
    expect(ackCount(ackFrame(123))).toBe(123);
    for (const text of ['{"event":"$ack","data":1', '{"event":"$ack","data":x}', '{"event":"$ack","data":9999999999999999}', '{"event":"ack","data":1}', '']) {
      expect(ackCount(text)).toBeNull();
    }
  });
});
