/**
 * Fuzz targets (fast-check) shared by the short run in `npm test` (test/fuzz/fuzz.spec.ts) and the long one
 * (`npm run fuzz -- --seconds N [--seed S] [--target name]`, soak/fuzz.ts). Free of jest, so that both can run them.
 *
 * Each target allows only the documented outcomes, as python-websockets' fuzzer does: events, or a failed
 * connection whose error carries close code 1002, 1007 or 1009 (frames); a request or response, or a
 * `HandshakeError` with an HTTP status (handshakes). Memory must stay bounded: after the events are pulled the
 * parser holds at most one frame header and one control payload, no message is larger than the limit (after
 * inflation too), and a handshake parser fails before it has been fed more than its limits allow.
 *
 * A failure is reported with the seed and the fast-check path: `--seed S --path P` replays just that input.
 */
import fc from 'fast-check';
import { constants, deflateRawSync } from 'node:zlib';
import { resolveConfig, type Limits } from '../../lib/config/index.js';
import { HandshakeError, InvalidUtf8Error, MessageTooBigError, ProtocolError } from '../../lib/errors.js';
import { createDeflateCodec } from '../../lib/node/deflate.js';
import type { DeflateParams } from '../../lib/protocol/compression.js';
import { Connection, SEND_EOF, State, type ConnectionEvent } from '../../lib/protocol/connection.js';
import { acceptDeflateResponse, deflateOffer, negotiateDeflate } from '../../lib/protocol/extensions.js';
import {
  RequestParser,
  ResponseParser,
  buildAcceptResponse,
  buildRequest,
  rejectionFor,
  selectSubprotocol,
  validateUpgradeRequest,
  validateUpgradeResponse,
  type HandshakeRequest,
  type HandshakeResponse,
} from '../../lib/protocol/handshake.js';
import type { Side } from '../../lib/protocol/frame.js';

/** Largest frame header: 2 bytes, 8 of extended length, 4 of mask. */
const MAX_HEADER = 14;
/** RFC 6455 §5.5. */
const MAX_CONTROL = 125;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const COMPRESSION = resolveConfig({}, {}).compression!;

/** How long and from where a target runs. */
export interface FuzzParams {
  readonly seed: number;
  /** Stop after this many inputs... */
  readonly numRuns?: number;
  /** ...or after this many ms, whichever comes first. */
  readonly timeLimitMs?: number;
  /** Replay one input: the `path` printed with a failure. */
  readonly path?: string;
}

/** What a run found. */
export interface FuzzReport {
  readonly target: string;
  readonly seed: number;
  readonly runs: number;
  readonly failed: boolean;
  /** With a failure: how to replay it. */
  readonly replay?: string;
  /** With a failure: the (shrunk) input, bytes as hex. */
  readonly counterexample?: string;
  readonly error?: string;
}

/** One fuzz target: a name, what it checks, and how to run it. */
export interface FuzzTarget {
  readonly name: string;
  readonly doc: string;
  check(params: FuzzParams): FuzzReport;
}

function target<T>(name: string, doc: string, arbitrary: fc.Arbitrary<T>, run: (input: T) => void): FuzzTarget {
  return {
    name,
    doc,
    check(params) {
      const details = fc.check(
        fc.property(arbitrary, (input) => {
          run(input);
        }),
        {
          seed: params.seed,
          numRuns: params.path !== undefined ? 1 : (params.numRuns ?? 2 ** 31 - 1),
          ...(params.timeLimitMs === undefined ? {} : { interruptAfterTimeLimit: params.timeLimitMs, markInterruptAsFailure: false }),
          ...(params.path === undefined ? {} : { path: params.path }),
        },
      );
      if (!details.failed) return { target: name, seed: params.seed, runs: details.numRuns, failed: false };
      return {
        target: name,
        seed: params.seed,
        runs: details.numRuns,
        failed: true,
        replay: `npm run fuzz -- --target ${name} --seed ${details.seed} --path ${details.counterexamplePath ?? ''}`,
        counterexample: showInput(details.counterexample),
        error: details.errorInstance instanceof Error ? (details.errorInstance.stack ?? details.errorInstance.message) : String(details.errorInstance),
      };
    },
  };
}

function showInput(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Uint8Array) return `hex:${Buffer.from(v).toString('hex')}`;
    if (typeof v === 'bigint') return `${v}n`;
    if (v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return `hex:${Buffer.from((v as { data: number[] }).data).toString('hex')}`;
    }
    return v;
  });
}

/** An invariant broken: the message says which. */
class Violation extends Error {}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Violation(what);
}

// --- frames ----------------------------------------------------------------------------------------------------

interface FrameSpec {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** 'actual', or a declared length that lies (up to 2^64 - 1). */
  declared: 'actual' | bigint;
  payload: Uint8Array;
}

const lengthLie = fc.oneof(
  fc.constant<'actual'>('actual'),
  fc.constant<'actual'>('actual'),
  fc.constant<'actual'>('actual'),
  fc.constantFrom(126n, 127n, 0xffffn, 0x10000n, 2n ** 31n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);

const frameSpec: fc.Arbitrary<FrameSpec> = fc.record({
  fin: fc.boolean(),
  rsv: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 7 })),
  opcode: fc.oneof(fc.constantFrom(0x0, 0x1, 0x2, 0x8, 0x9, 0xa), fc.integer({ min: 0, max: 15 })),
  masked: fc.oneof(fc.constant(true), fc.constant(true), fc.boolean()),
  declared: lengthLie,
  payload: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 300 }), fc.constant(new Uint8Array(0))),
});

/** Serializes a frame, independently of lib/protocol/frame-writer.ts. */
function encodeFrame(spec: FrameSpec, key: Uint8Array): Buffer {
  const length = spec.declared === 'actual' ? BigInt(spec.payload.length) : spec.declared;
  const first = (spec.fin ? 0x80 : 0) | ((spec.rsv & 7) << 4) | (spec.opcode & 0x0f);
  const maskBit = spec.masked ? 0x80 : 0;
  let head: Buffer;
  if (length <= 125n) head = Buffer.from([first, maskBit | Number(length)]);
  else if (length <= 0xffffn) head = Buffer.from([first, maskBit | 126, Number(length >> 8n), Number(length & 255n)]);
  else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(length, 2);
  }
  const body = Buffer.from(spec.payload);
  if (spec.masked) for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([head, spec.masked ? Buffer.from(key) : Buffer.alloc(0), body]);
}

/** Cuts `bytes` at the given points (mod length + 1), each chunk a copy (the connection may unmask in place). */
function split(bytes: Buffer, points: readonly number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(Buffer.from(bytes.subarray(at, cut)));
    at = cut;
  }
  return chunks;
}

function mutate(bytes: Buffer, mutations: ReadonlyArray<readonly [number, number, number]>): Buffer {
  const out = [...bytes];
  for (const [at, value, kind] of mutations) {
    const i = at % (out.length + 1);
    if (kind === 0) out.splice(i, 0, value);
    else if (kind === 1) out.splice(i, 1);
    else if (out.length > 0) out[Math.min(i, out.length - 1)] = value;
  }
  return Buffer.from(out);
}

const mutations = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 2 })), { maxLength: 4 });
const points = fc.array(fc.nat(), { maxLength: 10 });
const maxMessageSize = fc.constantFrom(1, 16, 125, 126, 1000, 65_536);

/** Checks an event against the limits; returns it. */
function checkEvent(event: ConnectionEvent, limit: number): void {
  switch (event.type) {
    case 'text':
      check(typeof event.data === 'string' && Buffer.byteLength(event.data) <= limit, `text message over the limit of ${limit}`);
      break;
    case 'binary':
      check(Buffer.isBuffer(event.data) && event.data.length <= limit, `binary message over the limit of ${limit}`);
      break;
    case 'ping':
    case 'pong':
      check(event.data.length <= MAX_CONTROL, 'control payload over 125 bytes');
      break;
    case 'close':
      check(Number.isInteger(event.code) && typeof event.reason === 'string', 'close event without a code');
      break;
    default:
      throw new Violation(`unknown event ${JSON.stringify(event)}`);
  }
}

/** Feeds chunks, pulling every event after each (or only at the end), checking events, memory and the outcome. */
function driveConnection(conn: Connection, chunks: readonly Buffer[], limit: number, pullEachChunk: boolean): ConnectionEvent[] {
  const events: ConnectionEvent[] = [];
  const pull = (): void => {
    for (let event = conn.nextEvent(); event !== undefined; event = conn.nextEvent()) {
      checkEvent(event, limit);
      events.push(event);
    }
    // Everything pulled: the parser holds at most a partial header and a partial control payload.
    check(conn.bufferedAmount <= MAX_HEADER + MAX_CONTROL, `parser holds ${conn.bufferedAmount} bytes after the events were pulled`);
  };
  for (const chunk of chunks) {
    conn.receiveData(chunk);
    if (pullEachChunk) pull();
  }
  pull();
  conn.receiveEof();
  pull();
  check(conn.state === State.CLOSED, `state ${conn.state} after EOF`);
  const failure = conn.failure;
  if (failure !== null) {
    check(
      failure instanceof ProtocolError || failure instanceof InvalidUtf8Error || failure instanceof MessageTooBigError,
      `failure of an undocumented type: ${String(failure)}`,
    );
    check([1002, 1007, 1009].includes(failure.closeCode), `failure with close code ${failure.closeCode}`);
    if (conn.closeSent !== null && conn.closeReceived === null) check(conn.closeSent.code === failure.closeCode, 'close frame sent with another code');
  }
  const out = conn.dataToSend();
  if (conn.side === 'server') check(out.at(-1) === SEND_EOF, 'a server did not end the stream');
  return events;
}

const framesTarget = target(
  'frames',
  'Connection without compression: random, lying and mutated frames, split anywhere, on both sides',
  fc.record({
    side: fc.constantFrom<Side>('server', 'client'),
    frames: fc.array(frameSpec, { maxLength: 8 }),
    key: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    mutations,
    raw: fc.option(fc.uint8Array({ maxLength: 400 }), { freq: 4 }),
    points,
    limit: maxMessageSize,
    pullEachChunk: fc.boolean(),
  }),
  ({ side, frames, key, mutations: m, raw, points: p, limit, pullEachChunk }) => {
    const bytes = raw !== null ? Buffer.from(raw) : mutate(Buffer.concat(frames.map((f) => encodeFrame(f, key))), m);
    const conn = new Connection({ side, maxMessageSize: limit });
    driveConnection(conn, split(bytes, p), limit, pullEachChunk);
  },
);

// --- frames with permessage-deflate ---------------------------------------------------------------------------

interface DeflateMessage {
  text: boolean;
  /** What the message holds before compression. */
  content: 'random' | 'text' | 'zeros';
  size: number;
  seed: Uint8Array;
  compressed: boolean;
  fragments: number[];
}

function contentOf(message: DeflateMessage): Buffer {
  if (message.content !== 'zeros' && message.size > 70_000) return contentOf({ ...message, size: message.size % 70_000 });
  switch (message.content) {
    case 'zeros':
      return Buffer.alloc(message.size);
    case 'text': {
      const word = Buffer.from(`hé ${Buffer.from(message.seed).toString('hex')} `, 'utf8');
      return Buffer.from(word.toString('utf8').repeat(Math.ceil(message.size / word.length) + 1).slice(0, message.size), 'utf8');
    }
    default: {
      const out = Buffer.alloc(message.size);
      for (let i = 0; i < out.length; i++) out[i] = message.seed[i % message.seed.length]! ^ (i * 131);
      return out;
    }
  }
}

/** RFC 7692 §7.2.1, independently of lib/node/deflate.ts: raw deflate, sync flush, trailer removed. */
function compress(data: Buffer, windowBits: number): Buffer {
  const out = deflateRawSync(data, { windowBits: Math.max(9, windowBits), finishFlush: constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

const deflateMessage: fc.Arbitrary<DeflateMessage> = fc.record({
  text: fc.boolean(),
  content: fc.constantFrom<DeflateMessage['content']>('random', 'text', 'zeros', 'zeros'),
  size: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 300 }) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 70_000 }) },
    // Bombs: only zeros get this big (a few KiB on the wire).
    { weight: 1, arbitrary: fc.constantFrom(1_048_577, 4_194_304) },
  ),
  seed: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  compressed: fc.oneof(fc.constant(true), fc.constant(true), fc.constant(false)),
  fragments: fc.array(fc.nat(2000), { maxLength: 3 }),
});

const deflateTarget = target(
  'deflate',
  'Connection with the real permessage-deflate codec: valid, mutated and bomb messages (zeros inflating past the limit), fragmented',
  fc.record({
    messages: fc.array(deflateMessage, { minLength: 1, maxLength: 4 }),
    remoteMaxWindowBits: fc.integer({ min: 8, max: 15 }),
    remoteNoContextTakeover: fc.boolean(),
    key: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    mutations: fc.option(mutations, { freq: 3 }),
    points,
    limit: fc.constantFrom(125, 4096, 65_536, 1_048_576),
  }),
  ({ messages, remoteMaxWindowBits, remoteNoContextTakeover, key, mutations: m, points: p, limit }) => {
    const params: DeflateParams = { localMaxWindowBits: 12, remoteMaxWindowBits, localNoContextTakeover: false, remoteNoContextTakeover };
    const conn = new Connection({ side: 'server', maxMessageSize: limit, codec: createDeflateCodec(params, 5) });
    const frames: Buffer[] = [];
    const expected: ConnectionEvent[] = [];
    let tooBig = false;
    for (const message of messages) {
      const content = message.text && message.content === 'random' ? Buffer.from(contentOf(message).toString('base64').slice(0, message.size)) : contentOf(message);
      const wire = message.compressed ? compress(content, remoteMaxWindowBits) : content;
      if (!tooBig) {
        if (wire.length > limit || content.length > limit) tooBig = true;
        else expected.push(message.text ? { type: 'text', data: content.toString('utf8') } : { type: 'binary', data: content });
      }
      let at = 0;
      const pieces: Buffer[] = [];
      for (const size of message.fragments) {
        pieces.push(wire.subarray(at, Math.min(wire.length, at + size)));
        at = Math.min(wire.length, at + size);
      }
      pieces.push(wire.subarray(at));
      pieces.forEach((piece, i) =>
        frames.push(
          encodeFrame(
            { fin: i === pieces.length - 1, rsv: i === 0 && message.compressed ? 4 : 0, opcode: i === 0 ? (message.text ? 1 : 2) : 0, masked: true, declared: 'actual', payload: piece },
            key,
          ),
        ),
      );
    }
    const bytes = m === null ? Buffer.concat(frames) : mutate(Buffer.concat(frames), m);
    const events = driveConnection(conn, split(bytes, p), limit, true);
    if (m !== null) return;
    // Unmutated: exactly the messages under the limit, then 1009 at the first one over it.
    check(events.length === expected.length, `${events.length} events, expected ${expected.length}`);
    events.forEach((event, i) => {
      const want = expected[i]!;
      const same =
        event.type === want.type &&
        (event.type === 'text' ? event.data === (want as { data: string }).data : Buffer.compare((event as { data: Buffer }).data, (want as { data: Buffer }).data) === 0);
      check(same, `message ${i} differs after inflation`);
    });
    if (tooBig) check(conn.failure?.closeCode === 1009, `a message over ${limit} bytes gave ${conn.failure?.closeCode ?? 'no failure'}`);
    else check(conn.failure === null, `valid messages failed with ${String(conn.failure)}`);
  },
);

// --- handshake requests and responses -------------------------------------------------------------------------

/** Small limits, so that a few hundred random bytes reach them. */
const SMALL: Limits = { ...resolveConfig({}, {}).limits, maxLineLength: 48, maxNumHeaders: 5, maxBodySize: 64 };
const DEFAULT: Limits = resolveConfig({}, {}).limits;

/** A server's failure: a `HandshakeError` whose status and headers make a valid refusal. */
function checkHandshakeError(error: unknown): void {
  checkClientHandshakeError(error);
  const status = (error as HandshakeError).httpStatus;
  check(Number.isInteger(status) && status >= 400 && status <= 599, `HTTP status ${status}`);
  // Every refusal can be serialized (its headers and message go on the wire).
  const response = rejectionFor(error as HandshakeError, 'fuzz');
  check(response.subarray(0, 9).toString('latin1') === 'HTTP/1.1 ' && response.includes('\r\n\r\n'), 'refusal is not an HTTP response');
}

/** A client's failure: a `HandshakeError` (an `InvalidStatusError` carries whatever status the server sent). */
function checkClientHandshakeError(error: unknown): void {
  if (error instanceof Violation) throw error;
  check(error instanceof HandshakeError, `undocumented error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}

const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,10}$/);
const validRequest = fc
  .record({
    path: fc.stringMatching(/^\/[\x21-\x7e]{0,20}$/),
    protocols: fc.uniqueArray(token, { maxLength: 3 }),
    extensions: fc.oneof(
      fc.constant(''),
      fc.constantFrom('permessage-deflate', 'permessage-deflate; client_max_window_bits', 'permessage-deflate; server_max_window_bits=8, x-foo', 'permessage-deflate; server_no_context_takeover; client_max_window_bits=9'),
      fc.stringMatching(/^[\x20-\x7e]{0,40}$/),
    ),
  })
  .map(({ path, protocols, extensions }) =>
    buildRequest({ host: 'example.com', path, key: KEY, protocols, userAgent: 'fuzz', extensions: extensions === '' ? null : extensions }),
  );

/** The server side of a request: validate, negotiate, answer (101 or refusal). Throws only HandshakeError. */
function serverSide(request: HandshakeRequest): void {
  const upgrade = validateUpgradeRequest(request);
  const protocol = selectSubprotocol(upgrade.protocols, ['chat', 'b']);
  const deflate = negotiateDeflate(upgrade.extensions === '' ? undefined : upgrade.extensions, COMPRESSION);
  const response = buildAcceptResponse({ key: upgrade.key, protocol, extensions: deflate?.response ?? null, serverHeader: 'fuzz' });
  check(response.subarray(0, 13).toString('latin1') === 'HTTP/1.1 101 ', 'accept is not a 101');
}

const requestTarget = target(
  'request',
  'Handshake request parser, validation, deflate negotiation and the answer: random, mutated and valid requests, split anywhere',
  fc.record({
    input: fc.oneof(validRequest.map((b) => Buffer.from(b)), fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a))),
    mutations: fc.option(mutations, { freq: 2 }),
    points,
    small: fc.boolean(),
  }),
  ({ input, mutations: m, points: p, small }) => {
    const limits = small ? SMALL : DEFAULT;
    const bytes = m === null ? input : mutate(input, m);
    // A head can only be this long before a limit fails it: the request line, the headers and the empty line.
    const bound = (limits.maxNumHeaders + 2) * limits.maxLineLength;
    const parser = new RequestParser(limits);
    let fed = 0;
    try {
      for (const chunk of split(bytes, p)) {
        const request = parser.push(chunk);
        fed += chunk.length;
        if (request !== null) {
          check(Buffer.isBuffer(parser.rest), 'no rest');
          serverSide(request);
          return;
        }
        check(fed <= bound + chunk.length, `fed ${fed} bytes without a request or an error (bound ${bound})`);
      }
    } catch (error) {
      checkHandshakeError(error);
    }
  },
);

const responseTarget = target(
  'response',
  'Handshake response parser (101, refusals with Content-Length, chunked and EOF bodies) and its validation',
  fc.record({
    prefix: fc.constantFrom(
      '',
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n',
      'HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n',
      'HTTP/1.1 404 X\r\nContent-Length: 10\r\n\r\n',
      'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n',
    ),
    data: fc.uint8Array({ maxLength: 300 }),
    mutations: fc.option(mutations, { freq: 2 }),
    points,
    small: fc.boolean(),
  }),
  ({ prefix, data, mutations: m, points: p, small }) => {
    const limits = small ? SMALL : DEFAULT;
    const whole = Buffer.concat([Buffer.from(prefix, 'latin1'), data]);
    const bytes = m === null ? whole : mutate(whole, m);
    const parser = new ResponseParser(limits);
    try {
      let response: HandshakeResponse | null = null;
      for (const chunk of split(bytes, p)) {
        response = parser.push(chunk);
        if (response !== null) break;
      }
      response ??= parser.end();
      check(response.body.length <= limits.maxBodySize, `body of ${response.body.length} bytes over ${limits.maxBodySize}`);
      const accepted = validateUpgradeResponse(response, { key: KEY, protocols: ['chat'] });
      acceptDeflateResponse(accepted.extensions === '' ? undefined : accepted.extensions, COMPRESSION);
      check(deflateOffer(COMPRESSION) !== null, 'no offer');
    } catch (error) {
      checkClientHandshakeError(error);
    }
  },
);

/** Every target, in the order the runners use. */
export const FUZZ_TARGETS: readonly FuzzTarget[] = [framesTarget, deflateTarget, requestTarget, responseTarget];
