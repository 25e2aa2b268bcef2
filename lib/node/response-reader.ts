/**
 * Reads one HTTP response from a socket with the core's `ResponseParser`, under its limits: the server's answer to
 * the opening handshake, or a proxy's answer to CONNECT. The parser decides when the response is complete; this
 * only moves bytes and the end of the connection into it.
 */
import type { Duplex } from 'node:stream';
import type { HandshakeResponse, ResponseParser } from '../protocol/handshake.js';

/**
 * Feeds the socket to the parser until the response is complete; leaves the socket paused, with no listener of
 * its own, so that what follows the response (frames, a tunnel) stays in the socket for the next reader.
 * @throws what the parser throws (HandshakeLimitError, HandshakeError, IncompleteResponseError), or the socket's error
 */
export function readResponse(socket: Duplex, parser: ResponseParser): Promise<HandshakeResponse> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
    };
    const settle = (run: () => HandshakeResponse | null): void => {
      let response: HandshakeResponse | null;
      try {
        response = run();
      } catch (error) {
        cleanup();
        reject(error);
        return;
      }
      if (response !== null) {
        cleanup();
        resolve(response);
      }
    };
    const onData = (chunk: Buffer): void => settle(() => parser.push(chunk));
    const onEnd = (): void => settle(() => parser.end());
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => settle(() => parser.end());
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    // A socket paused by the reader before it (a proxy's answer) does not resume with a 'data' listener alone.
    socket.resume();
  });
}
