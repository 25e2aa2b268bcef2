import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';

import { resolveConfig, type CompressionOptions, type ResolvedCompression } from '../../lib/config/index.js';
import { InvalidExtensionsError, InvalidHeaderError } from '../../lib/errors.js';
import {
  MAX_WINDOW_BITS,
  MIN_WINDOW_BITS,
  PERMESSAGE_DEFLATE,
  acceptDeflateResponse,
  deflateOffer,
  negotiateDeflate,
  parseExtensions,
} from '../../lib/protocol/extensions.js';

function compression(options: CompressionOptions = {}): ResolvedCompression {
  const resolved = resolveConfig({ compression: options }).compression;
  if (resolved === null) throw new Error('compression unexpectedly off');
  return resolved;
}

const DEFAULTS = compression();
const BITS = Array.from({ length: MAX_WINDOW_BITS - MIN_WINDOW_BITS + 1 }, (_, i) => MIN_WINDOW_BITS + i);

function refusal(fn: () => unknown): InvalidExtensionsError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidExtensionsError);
    expect(error).toBeInstanceOf(InvalidHeaderError);
    return error as InvalidExtensionsError;
  }
  throw new Error('expected an InvalidExtensionsError');
}

describe('parseExtensions', () => {
  it('reads names, bare parameters, token and quoted values, with optional whitespace', () => {
    expect(parseExtensions('permessage-deflate; client_max_window_bits ;server_max_window_bits = 10 ,\tfoo;a="b";c=d')).toEqual([
      { name: 'permessage-deflate', params: [['client_max_window_bits', null], ['server_max_window_bits', '10']] },
      { name: 'foo', params: [['a', 'b'], ['c', 'd']] },
    ]);
  });

  it('unescapes quoted pairs', () => {
    expect(parseExtensions('x; a="1\\2"')).toEqual([{ name: 'x', params: [['a', '12']] }]);
  });

  it('reads headers joined by commas and skips empty list elements (RFC 7230 §7)', () => {
    expect(parseExtensions(', a ,, b;c ,')).toEqual([
      { name: 'a', params: [] },
      { name: 'b', params: [['c', null]] },
    ]);
    expect(parseExtensions('')).toEqual([]);
    expect(parseExtensions(' \t ')).toEqual([]);
  });

  it.each([
    [';a', 'expected a token at offset 0'],
    ['a;', 'expected a token at offset 2'],
    ['a; b=', 'expected a token at offset 5'],
    ['a b', 'expected "," or ";" at offset 2'],
    ['a; b=c d', 'expected "," or ";" at offset 7'],
    ['a; b="c', 'unterminated quoted string at offset 7'],
    ['a; b="c\\', 'invalid quoted pair at offset 7'],
    ['a; b="c\\\x01"', 'invalid quoted pair at offset 7'],
    ['a; b="c\x01"', 'invalid character in quoted string at offset 7'],
    ['a; b=""', 'quoted value is not a token at offset 7'],
    ['a; b="c d"', 'quoted value is not a token at offset 10'],
    ['a; b="c"d', 'expected "," or ";" at offset 8'],
    ['permessage-deflate=1', 'expected "," or ";" at offset 18'],
  ])('refuses %j: %s', (header, reason) => {
    const error = refusal(() => parseExtensions(header));
    expect(error.reason).toBe(reason);
    expect(error.headerName).toBe('Sec-WebSocket-Extensions');
    expect(error.httpStatus).toBe(400);
    expect(error.code).toBe('WS_ERR_INVALID_EXTENSIONS');
    expect(error.message).toBe(`invalid Sec-WebSocket-Extensions header: ${header} (${reason})`);
  });

  it('parses or throws InvalidExtensionsError on any input, and round-trips what it formats', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (header) => {
        try {
          parseExtensions(header);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidExtensionsError);
        }
      }),
    );
    const token = fc.stringMatching(/^[a-z0-9_-]{1,8}$/);
    const item = fc.record({ name: token, params: fc.array(fc.tuple(token, fc.option(token, { nil: null })), { maxLength: 4 }) });
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 4 }), fc.boolean(), (items, quote) => {
        const text = items
          .map((i) => [i.name, ...i.params.map(([n, v]) => (v === null ? n : quote ? `${n}="${v}"` : `${n}=${v}`))].join('; '))
          .join(', ');
        expect(parseExtensions(text)).toEqual(items);
      }),
    );
  });
});

describe('negotiateDeflate (server)', () => {
  it('answers the browsers\' offer with 12-bit windows on both sides', () => {
    const result = negotiateDeflate('permessage-deflate; client_max_window_bits', DEFAULTS);
    expect(result).toEqual({
      response: 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12',
      params: { localMaxWindowBits: 12, remoteMaxWindowBits: 12, localNoContextTakeover: false, remoteNoContextTakeover: false },
    });
  });

  it('always sends server_max_window_bits, and client_max_window_bits only when offered', () => {
    expect(negotiateDeflate('permessage-deflate', DEFAULTS)).toEqual({
      response: 'permessage-deflate; server_max_window_bits=12',
      params: { localMaxWindowBits: 12, remoteMaxWindowBits: 15, localNoContextTakeover: false, remoteNoContextTakeover: false },
    });
  });

  it('returns null when compression is off, the header is absent, or nothing is offered', () => {
    expect(negotiateDeflate('permessage-deflate', null)).toBeNull();
    expect(negotiateDeflate(undefined, DEFAULTS)).toBeNull();
    expect(negotiateDeflate('', DEFAULTS)).toBeNull();
    expect(negotiateDeflate('x-webkit-deflate-frame', DEFAULTS)).toBeNull();
  });

  it('throws on a malformed header rather than guessing', () => {
    expect(refusal(() => negotiateDeflate('permessage-deflate; =', DEFAULTS)).reason).toBe('expected a token at offset 20');
  });

  it.each(BITS)('server_max_window_bits=%i: the server uses min(offered, configured)', (bits) => {
    const result = negotiateDeflate(`permessage-deflate; server_max_window_bits=${bits}`, DEFAULTS)!;
    const expected = Math.min(bits, 12);
    expect(result.response).toBe(`permessage-deflate; server_max_window_bits=${expected}`);
    expect(result.params.localMaxWindowBits).toBe(expected);
  });

  it.each(BITS)('client_max_window_bits=%i: the client is held to min(offered, configured)', (bits) => {
    const result = negotiateDeflate(`permessage-deflate; client_max_window_bits=${bits}`, DEFAULTS)!;
    const expected = Math.min(bits, 12);
    expect(result.response).toBe(`permessage-deflate; server_max_window_bits=12; client_max_window_bits=${expected}`);
    expect(result.params.remoteMaxWindowBits).toBe(expected);
  });

  it.each(BITS)('configured window bits %i are sent as is when the client allows 15', (bits) => {
    const config = compression({ serverMaxWindowBits: bits, clientMaxWindowBits: bits });
    const result = negotiateDeflate('permessage-deflate; server_max_window_bits=15; client_max_window_bits', config)!;
    expect(result.response).toBe(`permessage-deflate; server_max_window_bits=${bits}; client_max_window_bits=${bits}`);
    expect(result.params).toEqual({ localMaxWindowBits: bits, remoteMaxWindowBits: bits, localNoContextTakeover: false, remoteNoContextTakeover: false });
  });

  it('honours server_no_context_takeover and echoes client_no_context_takeover', () => {
    expect(negotiateDeflate('permessage-deflate; server_no_context_takeover; client_no_context_takeover', DEFAULTS)).toEqual({
      response: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12',
      params: { localMaxWindowBits: 12, remoteMaxWindowBits: 15, localNoContextTakeover: true, remoteNoContextTakeover: true },
    });
  });

  it('sends the configured no_context_takeover parameters even when not offered (RFC 7692 §7.1.1)', () => {
    const config = compression({ serverNoContextTakeover: true, clientNoContextTakeover: true });
    expect(negotiateDeflate('permessage-deflate', config)!.response).toBe(
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12',
    );
  });

  it('accepts quoted values and any letter case', () => {
    const result = negotiateDeflate('PerMessage-Deflate; Server_Max_Window_Bits="9"; CLIENT_MAX_WINDOW_BITS="10"', DEFAULTS)!;
    expect(result.response).toBe('permessage-deflate; server_max_window_bits=9; client_max_window_bits=10');
  });

  it.each([
    ['server_max_window_bits=7'],
    ['server_max_window_bits=16'],
    ['server_max_window_bits=08'],
    ['server_max_window_bits=+9'],
    ['server_max_window_bits'],
    ['client_max_window_bits=7'],
    ['client_max_window_bits=16'],
    ['client_max_window_bits=010'],
    ['server_no_context_takeover=1'],
    ['client_no_context_takeover="x"'],
    ['server_max_window_bits=10; server_max_window_bits=10'],
    ['client_max_window_bits; client_max_window_bits=10'],
    ['server_no_context_takeover; server_no_context_takeover'],
    ['client_no_context_takeover; Client_No_Context_Takeover'],
    ['mystery'],
  ])('declines an offer with %s and takes the next one', (params) => {
    expect(negotiateDeflate(`permessage-deflate; ${params}`, DEFAULTS)).toBeNull();
    const result = negotiateDeflate(`permessage-deflate; ${params}, foo, permessage-deflate; server_max_window_bits=10`, DEFAULTS);
    expect(result?.response).toBe('permessage-deflate; server_max_window_bits=10');
  });

  it('takes the first acceptable offer, not the best one', () => {
    const result = negotiateDeflate(
      'permessage-deflate; server_no_context_takeover, permessage-deflate; client_max_window_bits',
      DEFAULTS,
    );
    expect(result?.response).toBe('permessage-deflate; server_no_context_takeover; server_max_window_bits=12');
  });
});

describe('deflateOffer (client)', () => {
  it('offers permessage-deflate; client_max_window_bits by default, nothing when off', () => {
    expect(deflateOffer(DEFAULTS)).toBe('permessage-deflate; client_max_window_bits');
    expect(deflateOffer(null)).toBeNull();
  });

  it('adds the configured options', () => {
    expect(deflateOffer(compression({ serverNoContextTakeover: true, clientNoContextTakeover: true }))).toBe(
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits',
    );
    expect(deflateOffer(compression({ serverMaxWindowBits: 9, clientMaxWindowBits: 15 }))).toBe(
      'permessage-deflate; server_max_window_bits=9; client_max_window_bits=15',
    );
    // Set explicitly to the default value, a window is still offered: "not set" is recorded, not inferred from the value.
    expect(deflateOffer(compression({ serverMaxWindowBits: 12, clientMaxWindowBits: 12 }))).toBe(
      'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12',
    );
  });

  it('is accepted by negotiateDeflate, and its answer by acceptDeflateResponse, for every window size', () => {
    for (const server of BITS) {
      for (const client of BITS) {
        const clientConfig = compression({ serverMaxWindowBits: client, clientMaxWindowBits: client });
        const serverConfig = compression({ serverMaxWindowBits: server, clientMaxWindowBits: server });
        const agreed = negotiateDeflate(deflateOffer(clientConfig)!, serverConfig)!;
        const params = acceptDeflateResponse(agreed.response, clientConfig)!;
        // Each side inflates with the window the other compresses with, and never more than it asked for.
        expect(params.localMaxWindowBits).toBeLessThanOrEqual(agreed.params.remoteMaxWindowBits);
        expect(params.remoteMaxWindowBits).toBe(agreed.params.localMaxWindowBits);
        expect(params.localMaxWindowBits).toBeLessThanOrEqual(client);
      }
    }
  });
});

describe('acceptDeflateResponse (client)', () => {
  it('reads what the server granted', () => {
    expect(acceptDeflateResponse('permessage-deflate; server_max_window_bits=10; client_max_window_bits=9', DEFAULTS)).toEqual({
      localMaxWindowBits: 9,
      remoteMaxWindowBits: 10,
      localNoContextTakeover: false,
      remoteNoContextTakeover: false,
    });
  });

  it('uses 15 bits for the server and the configured bits for itself when the server names none', () => {
    expect(acceptDeflateResponse('permessage-deflate', DEFAULTS)).toEqual({
      localMaxWindowBits: 12,
      remoteMaxWindowBits: 15,
      localNoContextTakeover: false,
      remoteNoContextTakeover: false,
    });
  });

  it('reads both no_context_takeover parameters', () => {
    expect(acceptDeflateResponse('permessage-deflate; server_no_context_takeover; client_no_context_takeover', DEFAULTS)).toEqual({
      localMaxWindowBits: 12,
      remoteMaxWindowBits: 15,
      localNoContextTakeover: true,
      remoteNoContextTakeover: true,
    });
  });

  it('keeps its own client_no_context_takeover even when the server does not echo it (RFC 7692 §7.1.1.2)', () => {
    const params = acceptDeflateResponse('permessage-deflate', compression({ clientNoContextTakeover: true }));
    expect(params?.localNoContextTakeover).toBe(true);
  });

  it('returns null when the server accepted nothing', () => {
    expect(acceptDeflateResponse(undefined, DEFAULTS)).toBeNull();
    expect(acceptDeflateResponse('', DEFAULTS)).toBeNull();
    expect(acceptDeflateResponse(undefined, null)).toBeNull();
  });

  it.each(BITS)('accepts server_max_window_bits=%i up to what was offered', (bits) => {
    const config = compression({ serverMaxWindowBits: bits });
    expect(acceptDeflateResponse(`permessage-deflate; server_max_window_bits=${bits}`, config)?.remoteMaxWindowBits).toBe(bits);
    // The default (12) is not offered, so the server may then answer anything.
    if (bits < MAX_WINDOW_BITS && bits !== DEFAULTS.serverMaxWindowBits) {
      const error = refusal(() => acceptDeflateResponse(`permessage-deflate; server_max_window_bits=${bits + 1}`, config));
      expect(error.reason).toBe(`server_max_window_bits=${bits + 1} exceeds the ${bits} offered`);
    }
  });

  it.each(BITS)('accepts client_max_window_bits=%i up to what was offered', (bits) => {
    const config = compression({ clientMaxWindowBits: bits });
    expect(acceptDeflateResponse(`permessage-deflate; client_max_window_bits=${bits}`, config)?.localMaxWindowBits).toBe(bits);
    if (bits < MAX_WINDOW_BITS && bits !== DEFAULTS.clientMaxWindowBits) {
      const error = refusal(() => acceptDeflateResponse(`permessage-deflate; client_max_window_bits=${bits + 1}`, config));
      expect(error.reason).toBe(`client_max_window_bits=${bits + 1} exceeds the ${bits} offered`);
    }
  });

  it.each([
    ['x-webkit-deflate-frame', DEFAULTS, 'extension x-webkit-deflate-frame was not offered'],
    ['permessage-deflate', null, 'no extension was offered'],
    ['permessage-deflate, permessage-deflate', DEFAULTS, 'permessage-deflate accepted twice'],
    ['permessage-deflate, foo', DEFAULTS, 'extension foo was not offered'],
    ['permessage-deflate; mystery', DEFAULTS, 'unknown parameter mystery'],
    ['permessage-deflate; client_max_window_bits', DEFAULTS, 'invalid value for client_max_window_bits: null'],
    ['permessage-deflate; client_max_window_bits=7', DEFAULTS, 'invalid value for client_max_window_bits: 7'],
    ['permessage-deflate; client_max_window_bits=16', DEFAULTS, 'invalid value for client_max_window_bits: 16'],
    ['permessage-deflate; server_max_window_bits=7', DEFAULTS, 'invalid value for server_max_window_bits: 7'],
    ['permessage-deflate; server_max_window_bits=16', DEFAULTS, 'invalid value for server_max_window_bits: 16'],
    ['permessage-deflate; server_max_window_bits', DEFAULTS, 'invalid value for server_max_window_bits: null'],
    ['permessage-deflate; server_no_context_takeover=1', DEFAULTS, 'parameter server_no_context_takeover takes no value'],
    ['permessage-deflate; server_max_window_bits=9; server_max_window_bits=9', DEFAULTS, 'duplicate parameter server_max_window_bits'],
    ['permessage-deflate', compression({ serverNoContextTakeover: true }), 'server_no_context_takeover was offered but not accepted'],
    ['permessage-deflate', compression({ serverMaxWindowBits: 10 }), 'server_max_window_bits was offered but not accepted'],
    ['permessage-deflate; client_max_window_bits=11', compression({ clientMaxWindowBits: 10 }), 'client_max_window_bits=11 exceeds the 10 offered'],
    ['permessage-deflate; x=', DEFAULTS, 'expected a token at offset 22'],
  ])('refuses %j', (header, config, reason) => {
    const error = refusal(() => acceptDeflateResponse(header, config));
    expect(error.reason).toBe(reason);
    expect(error.message).toBe(`invalid Sec-WebSocket-Extensions header: ${header} (${reason})`);
  });

  it('names the extension constant the same way', () => {
    expect(PERMESSAGE_DEFLATE).toBe('permessage-deflate');
  });
});
