import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { resolveConfig, type Limits } from '../../lib/config/index.js';
import { HandshakeError } from '../../lib/errors.js';
import {
  RequestParser,
  ResponseParser,
  buildRequest,
  checkOrigin,
  validateUpgradeRequest,
  validateUpgradeResponse,
  type HandshakeRequest,
  type HandshakeResponse,
} from '../../lib/protocol/handshake.js';

const SMALL: Limits = { ...resolveConfig({}, {}).limits, maxLineLength: 96, maxNumHeaders: 6, maxBodySize: 64 };
const DEFAULT: Limits = resolveConfig({}, {}).limits;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const RUNS = { numRuns: 400, seed: 6455 };

/** Cuts `data` at the given offsets (sorted, deduplicated, clamped). */
function split(data: Uint8Array, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let previous = 0;
  for (const point of [...points, data.length]) {
    parts.push(Buffer.from(data.subarray(previous, point)));
    previous = point;
  }
  return parts;
}

/** Feeds chunks to a request parser; the result, the rest, or the error thrown. */
function feedRequest(chunks: Buffer[], limits: Limits): { request: HandshakeRequest | null; rest: Buffer } {
  const parser = new RequestParser(limits);
  let request: HandshakeRequest | null = null;
  const rest: Buffer[] = [];
  for (const chunk of chunks) {
    if (request === null) {
      request = parser.push(chunk);
      if (request !== null) rest.push(parser.rest);
    } else rest.push(chunk);
  }
  return { request, rest: Buffer.concat(rest) };
}

/** The only acceptable failure: a HandshakeError with an HTTP status a server can answer. */
function expectHandshakeError(error: unknown): void {
  expect(error).toBeInstanceOf(HandshakeError);
  const status = (error as HandshakeError).httpStatus;
  expect(Number.isInteger(status) && status >= 400 && status <= 599).toBe(true);
}

const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
const value = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,30}[\x21-\x7e])?$/);

const validRequest = fc
  .record({
    path: fc.stringMatching(/^\/[\x21-\x7e]{0,30}$/),
    protocols: fc.uniqueArray(token, { maxLength: 3 }),
    headers: fc.array(fc.tuple(token.filter((t) => !/^(upgrade|connection|sec-websocket-.*|content-length|transfer-encoding)$/i.test(t)), value), { maxLength: 5 }),
    origin: fc.option(fc.constant('https://app.example'), { nil: undefined }),
  })
  .map(({ path, protocols, headers, origin }) =>
    buildRequest({ host: 'example.com:8080', path, key: KEY, protocols, origin, userAgent: 'fuzz/1', headers }),
  );

describe('handshake properties', () => {
  it('any split of a valid request gives the same request and rest', () => {
    fc.assert(
      fc.property(validRequest, fc.uint8Array({ maxLength: 20 }), fc.array(fc.nat(), { maxLength: 8 }), (head, tail, cuts) => {
        const data = Buffer.concat([head, tail]);
        const whole = feedRequest([data], DEFAULT);
        expect(whole.request).not.toBeNull();
        expect(whole.rest).toEqual(Buffer.from(tail));
        expect(validateUpgradeRequest(whole.request!).key).toBe(KEY);
        const pieces = feedRequest(split(data, cuts), DEFAULT);
        expect(pieces.request).toEqual(whole.request);
        expect(pieces.rest).toEqual(whole.rest);
      }),
      RUNS,
    );
  });

  it('random bytes parse, or fail with a HandshakeError that has an HTTP status', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(), { maxLength: 6 }), (data, cuts) => {
        try {
          const { request } = feedRequest(split(data, cuts), SMALL);
          if (request !== null) {
            validateUpgradeRequest(request);
            checkOrigin(request, ['https://app.example', /https:\/\/.*\.example/], false);
          }
        } catch (error) {
          expectHandshakeError(error);
        }
      }),
      RUNS,
    );
  });

  it('mutated valid requests parse, or fail with a HandshakeError that has an HTTP status', () => {
    const mutation = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('replace', 'insert', 'delete'));
    fc.assert(
      fc.property(validRequest, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 4 }), (head, mutations, cuts) => {
        const bytes = [...head];
        for (const [at, byte, kind] of mutations) {
          const i = at % (bytes.length + 1);
          if (kind === 'insert') bytes.splice(i, 0, byte);
          else if (kind === 'delete') bytes.splice(i, 1);
          else bytes[Math.min(i, bytes.length - 1)] = byte;
        }
        for (const limits of [SMALL, DEFAULT]) {
          try {
            const { request } = feedRequest(split(Uint8Array.from(bytes), cuts), limits);
            if (request !== null) {
              validateUpgradeRequest(request);
              checkOrigin(request, ['https://app.example'], true);
            }
          } catch (error) {
            expectHandshakeError(error);
          }
        }
      }),
      RUNS,
    );
  });

  it('random response bytes parse, or fail with a HandshakeError', () => {
    const prefix = fc.constantFrom('', 'HTTP/1.1 101 OK\r\n', 'HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n', 'HTTP/1.1 404 X\r\nContent-Length: 10\r\n\r\n');
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 6 }), (start, data, cuts) => {
        const parser = new ResponseParser(SMALL);
        try {
          let response: HandshakeResponse | null = null;
          for (const chunk of split(Buffer.concat([Buffer.from(start), data]), cuts)) {
            response = parser.push(chunk);
            if (response !== null) break;
          }
          response = parser.end();
          validateUpgradeResponse(response, { key: KEY, protocols: ['chat'] });
        } catch (error) {
          expect(error).toBeInstanceOf(HandshakeError);
        }
      }),
      RUNS,
    );
  });

  it('any split of a chunked response gives the same body', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 20 }), { maxLength: 5 }), fc.array(fc.nat(), { maxLength: 10 }), (parts, cuts) => {
        const encoded = Buffer.concat([
          Buffer.from('HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n'),
          ...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), Buffer.from(p), Buffer.from('\r\n')]),
          Buffer.from('0\r\n\r\n'),
        ]);
        const parser = new ResponseParser(DEFAULT);
        let response: HandshakeResponse | null = null;
        for (const chunk of split(encoded, cuts)) if (response === null) response = parser.push(chunk);
        expect(response?.body).toEqual(Buffer.concat(parts.map((p) => Buffer.from(p))));
      }),
      RUNS,
    );
  });
});
