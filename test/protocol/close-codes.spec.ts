/** Which close codes may be on the wire (RFC 6455 §7.4): every boundary of the three ranges, and local-only codes. */
import { describe, expect, it } from '@jest/globals';
import { CloseCode, isWireCloseCode } from '../../lib/protocol/close-codes.js';

describe('isWireCloseCode', () => {
  it('allows 1000-1003, 1007-1014 and 3000-4999, and nothing else', () => {
    const allowed = [1000, 1001, 1002, 1003, 1007, 1010, 1014, 3000, 4000, 4401, 4999];
    const refused = [0, 999, 1004, CloseCode.NO_STATUS_RCVD, CloseCode.ABNORMAL_CLOSURE, CloseCode.TLS_HANDSHAKE, 1016, 2999, 5000, 1000.5, 4401.1, NaN];
    expect(allowed.filter(isWireCloseCode)).toEqual(allowed);
    expect(refused.filter(isWireCloseCode)).toEqual([]);
  });
});
