/**
 * A data message serialized once for many connections: a broadcast builds its frame once and every member's
 * connection writes the same bytes (Python websockets' `broadcast()` encodes once; uWebSockets.js publishes one
 * prepared message). Only a server can share a frame: a client masks each frame with a fresh key.
 */
import { Opcode } from './frame.js';
import { frameHeader } from './frame-writer.js';

export class PreparedMessage {
  /** The payload: UTF-8 for a text message. */
  readonly payload: Buffer;
  /** Whether it is sent as a text message. */
  readonly text: boolean;
  #frame: Buffer | null = null;

  /**
   * @param data a string (UTF-8 encoded once, here) or bytes
   * @param binary send as binary; by default strings go as text and bytes as binary
   */
  constructor(data: string | Buffer, binary?: boolean) {
    this.payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.text = binary === undefined ? typeof data === 'string' : !binary;
  }

  /** The message's opcode. */
  get opcode(): number {
    return this.text ? Opcode.TEXT : Opcode.BINARY;
  }

  /** The whole unmasked, uncompressed frame (header and payload in one buffer), built on first use and shared. */
  get frame(): Buffer {
    if (this.#frame === null) {
      const header = frameHeader(this.opcode, this.payload.length);
      this.#frame = Buffer.concat([header, this.payload], header.length + this.payload.length);
    }
    return this.#frame;
  }
}
