/**
 * In-band refusals in bytes: a 101 with the accept key of the request, no subprotocol and no extension, then an
 * unmasked close frame with 4000 + status and the message as reason, cut to 123 bytes between characters.
 */
import { describe, expect, it } from '@jest/globals';
import { REFUSAL_CLOSE_CODE_OFFSET } from '../../lib/protocol/close-codes.js';
import { inBandRefusal, isInBandStatus, refusalCloseCode } from '../../lib/protocol/in-band-refusal.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
// RFC 6455 §1.3: the accept value of that key.
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

function split(bytes: Buffer): { head: string; frame: Buffer } {
  const end = bytes.indexOf('\r\n\r\n') + 4;
  return { head: bytes.subarray(0, end).toString('latin1'), frame: bytes.subarray(end) };
}

describe('in-band refusals', () => {
  it('are a 101 and a close frame with 4000 + status and the message', () => {
    const { head, frame } = split(inBandRefusal({ key: KEY, status: 401, message: 'missing or wrong token', serverHeader: 'test/1' }));
    expect(head).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${ACCEPT}\r\nServer: test/1\r\n\r\n`,
    );
    // FIN + close, unmasked, 2 + 22 bytes, code 4401 = 0x1131.
    expect(frame.toString('hex')).toBe(`8818${'1131'}${Buffer.from('missing or wrong token').toString('hex')}`);
  });

  it('name the subprotocol they are given', () => {
    const { head } = split(inBandRefusal({ key: KEY, protocol: 'nestjs-websockets.auth', status: 401, message: 'no', serverHeader: null }));
    expect(head).toContain('\r\nSec-WebSocket-Protocol: nestjs-websockets.auth\r\n');
  });

  it("give the status's reason phrase when the message is empty, and no Server header for null", () => {
    const { head, frame } = split(inBandRefusal({ key: KEY, status: 403, message: '', serverHeader: null }));
    expect(head).not.toContain('Server:');
    expect(frame.readUInt16BE(2)).toBe(4403);
    expect(frame.subarray(4).toString()).toBe('Forbidden');
    // A status without a phrase here gives an empty reason.
    const bare = split(inBandRefusal({ key: KEY, status: 499, message: '', serverHeader: null })).frame;
    expect(bare.toString('hex')).toBe('88021193');
  });

  it('cut a long reason to 123 bytes without splitting a character', () => {
    const message = `${'a'.repeat(122)}é and more`;
    const { frame } = split(inBandRefusal({ key: KEY, status: 404, message, serverHeader: null }));
    expect(frame[1]).toBe(2 + 122);
    expect(frame.subarray(4).toString()).toBe('a'.repeat(122));
    const exact = split(inBandRefusal({ key: KEY, status: 404, message: 'b'.repeat(123), serverHeader: null })).frame;
    expect(exact[1]).toBe(125);
  });

  it('are for 400-499 only', () => {
    expect([399, 400, 401, 429, 499, 500, 503, 401.5].map(isInBandStatus)).toEqual([false, true, true, true, true, false, false, false]);
    expect(() => inBandRefusal({ key: KEY, status: 503, message: 'busy', serverHeader: null })).toThrow(
      new RangeError('an in-band refusal needs a status from 400 to 499; got 503'),
    );
    expect(refusalCloseCode(401)).toBe(REFUSAL_CLOSE_CODE_OFFSET + 401);
  });
});
