import { describe, it, expect } from '@jest/globals';
import { ConfigError, InvalidHeaderError } from '../../lib/errors.js';
import {
  formatSubprotocols,
  parseSubprotocols,
  selectSubprotocol,
  type SubprotocolSelector,
} from '../../lib/protocol/subprotocols.js';
import { RequestParser } from '../../lib/protocol/handshake.js';
import { resolveConfig } from '../../lib/config/index.js';

describe('subprotocols', () => {
  it('parses comma lists over several field lines, skipping empty elements', () => {
    expect(parseSubprotocols(['chat, superchat', ' ,v2 ', ''])).toEqual(['chat', 'superchat', 'v2']);
    expect(parseSubprotocols([])).toEqual([]);
  });

  it.each([['a b'], ['chat, "quoted"'], ['x/y']])('refuses the non-token %s with 400', (value) => {
    const error = (() => {
      try {
        parseSubprotocols([value]);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidHeaderError);
    expect((error as InvalidHeaderError).httpStatus).toBe(400);
    expect((error as Error).message).toBe(`invalid Sec-WebSocket-Protocol header: ${value}`);
  });

  it("picks the first of the server's list that the client offered", () => {
    expect(selectSubprotocol(['b', 'a', 'c'], ['a', 'b'])).toBe('a');
    expect(selectSubprotocol(['c'], ['a', 'b'])).toBeNull();
    expect(selectSubprotocol([], ['a'])).toBeNull();
    expect(selectSubprotocol(['A'], ['a'])).toBeNull();
  });

  it('lets a selector see the request', () => {
    const request = new RequestParser(resolveConfig({}, {}).limits).push(
      Buffer.from('GET /v2 HTTP/1.1\r\nHost: h\r\n\r\n'),
    )!;
    const byPath: SubprotocolSelector = (offered, req) => (req.path === '/v2' && offered.includes('v2') ? 'v2' : null);
    expect(byPath(['v1', 'v2'], request)).toBe('v2');
  });

  it('formats an offer and refuses bad or repeated names', () => {
    expect(formatSubprotocols(['chat', 'v2'])).toBe('chat, v2');
    expect(() => formatSubprotocols(['a,b'])).toThrow(ConfigError);
    expect(() => formatSubprotocols(['chat', 'chat'])).toThrow('subprotocol chat is offered twice');
  });
});
