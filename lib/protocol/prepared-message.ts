/**
 * A data message serialized once for many connections: a broadcast builds its frame once and every member's
 * connection writes the same bytes (Python websockets' `broadcast()` encodes once; uWebSockets.js publishes one
 * prepared message). Only a server can share a frame: a client masks each frame with a fresh key.
 */
import { Opcode } from './frame.js';
import { frameHeader } from './frame-writer.js';

export class PreparedMessage {
  /** The whole unmasked, uncompressed frame: header and payload in one buffer, shared by every connection. */
  readonly frame: Buffer;
  /** The payload (UTF-8 for a text message): a view of `frame`, so a message waiting somewhere holds one buffer. */
  readonly payload: Buffer;
  /** Whether it is sent as a text message. */
  readonly text: boolean;

  /**
   * @param data a string (encoded once, straight into the frame) or bytes (copied once, after the header)
   * @param binary send as binary; by default strings go as text and bytes as binary
   */
  constructor(data: string | Buffer, binary?: boolean) {
    this.text = binary === undefined ? typeof data === 'string' : !binary;
    const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    const header = frameHeader(this.text ? Opcode.TEXT : Opcode.BINARY, length);
    const frame = Buffer.allocUnsafe(header.length + length);
    header.copy(frame, 0);
    if (typeof data === 'string') frame.write(data, header.length, 'utf8');
    else data.copy(frame, header.length);
    this.frame = frame;
    this.payload = frame.subarray(header.length);
  }

  /** The message's opcode. */
  get opcode(): number {
    return this.text ? Opcode.TEXT : Opcode.BINARY;
  }
}
