/**
 * One WebSocket's HTTP/2 stream on the server, while its handshake is answered: the server's handshake path is the
 * HTTP/1.1 one, and where that path writes a 101 or a refusal on a socket, it asks `streamOf(socket)` whether the
 * "socket" is a stream, and if so answers with a header block instead (`:status 200`, or the refusal's status).
 * After the answer the stream is an ordinary `Duplex` to `WebSocket`: the frames of RFC 6455 run over it unchanged,
 * `end()` sends END_STREAM and `destroy()` a RST_STREAM.
 *
 * The peer's address and TLS state are the session's: a stream has no socket of its own.
 */
import { constants, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { HandshakeError } from '../errors.js';
import {
  acceptStreamHeaders,
  refusalCloseFrame,
  streamRefusal,
  streamRejectionFor,
  type StreamAcceptOptions,
  type StreamAnswer,
} from '../protocol/handshake.js';

const STATUS_INTERNAL_ERROR = 500;
const EMPTY = Buffer.alloc(0);

/** The streams in their handshake, with what the server needs to know of their session. */
const STREAMS = new WeakMap<Duplex, HandshakeStream>();

/** The handshake side of a stream: where it comes from, and how to answer it. */
export class HandshakeStream {
  readonly #stream: ServerHttp2Stream;

  private constructor(stream: ServerHttp2Stream) {
    this.#stream = stream;
  }

  /** Registers `stream` as an HTTP/2 WebSocket in its handshake; `streamOf(stream)` finds it from now on. */
  static register(stream: ServerHttp2Stream): HandshakeStream {
    const handshake = new HandshakeStream(stream);
    STREAMS.set(stream, handshake);
    return handshake;
  }

  /** The client's address (the session's socket's). */
  get remoteAddress(): string | undefined {
    return this.#stream.session?.socket?.remoteAddress;
  }

  /** The TLS socket of the session, when the session is over TLS. */
  get tlsSocket(): TLSSocket | undefined {
    const socket = this.#stream.session?.socket as Partial<TLSSocket> | undefined;
    return socket?.encrypted === true ? (socket as TLSSocket) : undefined;
  }

  /**
   * Accepts: `:status 200` with the negotiated subprotocol and extensions (RFC 8441 §5). The stream stays open for
   * the frames.
   * @throws ConfigError when the hook's headers cannot be sent (the caller answers 500 instead)
   */
  accept(options: StreamAcceptOptions): void {
    const headers = acceptStreamHeaders(options);
    if (!this.#stream.destroyed) this.#stream.respond(headers);
    STREAMS.delete(this.#stream);
    destroyWhenAborted(this.#stream);
    closeWhenFinished(this.#stream);
  }

  /**
   * Sends the header block of a refusal decided by the application (the hook's status, body and headers).
   * @returns the body, which the caller writes and ends the stream with
   * @throws ConfigError for a status or header that cannot be sent
   */
  reject(status: number, body: string, headers: Record<string, string>, serverHeader: string | null): Buffer {
    return this.#respond(streamRefusal(status, body, { serverHeader, headers }));
  }

  /**
   * Sends the header block of a failed handshake's refusal (400, 403, 404, 405, 426, 431, 503 ...).
   * @returns the body, as `reject`
   */
  refuse(failure: HandshakeError, serverHeader: string | null): Buffer {
    return this.#respond(streamRejectionFor(failure, serverHeader));
  }

  /**
   * An in-band refusal (option `refusals`): `:status 200` naming `protocol`, then a close frame with 4000 + status.
   * @returns the close frame, which the caller writes and ends the stream with
   */
  refuseInBand(protocol: string | null, status: number, message: string, serverHeader: string | null): Buffer {
    const frame = refusalCloseFrame(status, message);
    this.#respond({ headers: acceptStreamHeaders({ protocol, serverHeader }), body: frame });
    return frame;
  }

  #respond(answer: StreamAnswer): Buffer {
    STREAMS.delete(this.#stream);
    const stream = this.#stream;
    if (stream.destroyed || stream.headersSent) return answer.body;
    closeWhenFinished(stream);
    try {
      stream.respond(answer.headers);
    } catch {
      // What Node's own checks refuse (a header value it finds invalid) must not leave the stream unanswered.
      stream.respond({ ':status': STATUS_INTERNAL_ERROR });
      return EMPTY;
    }
    return answer.body;
  }
}

/** The HTTP/2 side of `socket` when it is a stream in its handshake, else `undefined` (a TCP or TLS socket). */
export function streamOf(socket: Duplex): HandshakeStream | undefined {
  return STREAMS.get(socket);
}

/**
 * A stream the peer resets (RST_STREAM, whatever its code) is gone for writing too; Node only ends its writable side
 * behind what is still queued, which a peer that has gone will never let out, so the stream (and the WebSocket on
 * it, which reports 1006) would wait for its session to end. It is destroyed at once instead.
 */
export function destroyWhenAborted(stream: Duplex): void {
  stream.once('aborted', destroyStream);
}

function destroyStream(this: Duplex): void {
  this.destroy();
}

/**
 * The server's side of a stream ends (END_STREAM) once the closing handshake is over or the refusal is sent: there
 * is nothing left to read, and RFC 9113 §8.1 lets a server that has sent its complete response close the stream
 * with RST_STREAM NO_ERROR. Without it the stream would wait for the client's END_STREAM, which Chromium sends only
 * after a timeout of its own (about 10 s), keeping the connection's slot, its admission and its `'close'` event.
 */
function closeWhenFinished(stream: ServerHttp2Stream): void {
  stream.once('finish', () => {
    if (!stream.destroyed && !stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
  });
}
