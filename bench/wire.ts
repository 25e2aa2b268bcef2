/**
 * The load client's own RFC 6455 wire code, kept apart from the package under test so that the client measures
 * every server the same way: a handshake over a raw `net.Socket`, client frames built once (masked, with rotating
 * keys), and a reply counter that walks frame headers and skips payloads without copying them.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';

/** RFC 6455 opcodes the client sends or looks at. */
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
const FIN = 0x80;
const RSV1 = 0x40;
const MASK_BIT = 0x80;
/** RFC 7692 §7.2.1: the empty stored block a sender strips from every compressed message. */
const DEFLATE_TRAILER_LENGTH = 4;
/**
 * The client compresses with a 9-bit window: zlib then never reaches back more than 250 bytes, which any window a
 * server may ask for (8 to 15 bits) can inflate, so one compressed frame is valid whatever was negotiated.
 */
const CLIENT_WINDOW_BITS = 9;

/**
 * Builds `count` copies of one client frame, each with its own random masking key, laid end to end in one buffer.
 * Writing `k` consecutive frames is then one `subarray`, with no copy and no masking at run time.
 */
export function buildFrameBlock(opcode: number, payload: Buffer, count: number, compressed = false): { block: Buffer; frameLength: number } {
  const length = payload.length;
  const extended = length <= 125 ? 0 : length <= 0xffff ? 2 : 8;
  const headerLength = 2 + extended + 4;
  const frameLength = headerLength + length;
  const block = Buffer.alloc(frameLength * count);
  const keys = randomBytes(4 * count);
  for (let f = 0; f < count; f++) {
    const at = f * frameLength;
    block[at] = FIN | (compressed ? RSV1 : 0) | opcode;
    if (extended === 0) {
      block[at + 1] = MASK_BIT | length;
    } else if (extended === 2) {
      block[at + 1] = MASK_BIT | 126;
      block.writeUInt16BE(length, at + 2);
    } else {
      block[at + 1] = MASK_BIT | 127;
      block.writeUInt32BE(Math.floor(length / 2 ** 32), at + 2);
      block.writeUInt32BE(length >>> 0, at + 6);
    }
    const keyAt = at + 2 + extended;
    keys.copy(block, keyAt, 4 * f, 4 * f + 4);
    const dataAt = keyAt + 4;
    for (let i = 0; i < length; i++) block[dataAt + i] = payload[i]! ^ block[keyAt + (i & 3)]!;
  }
  return { block, frameLength };
}

/** A message compressed as a client sends it with permessage-deflate (no context needed to inflate it). */
export function deflateMessage(payload: Buffer): Buffer {
  const out = deflateRawSync(payload, { windowBits: CLIENT_WINDOW_BITS, level: 9, memLevel: 9, finishFlush: constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - DEFLATE_TRAILER_LENGTH);
}

/** RFC 7692 §7.2.2: inflates one compressed message, putting back the trailer its sender stripped. */
export function inflateMessage(compressed: Buffer): Buffer {
  // The message ends with an empty stored block, not a final one: inflate up to a sync flush.
  return inflateRawSync(Buffer.concat([compressed, Buffer.from([0x00, 0x00, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH });
}

/** A masked close frame with code 1000, built once. */
export const CLOSE_FRAME: Buffer = (() => {
  const payload = Buffer.from([0x03, 0xe8]);
  return buildFrameBlock(OP_CLOSE, payload, 1).block;
})();

/**
 * Counts the frames a server sends, without copying their payloads. Handles headers split across reads, extended
 * lengths, and masked frames (the raw TCP echo sends the client's own frames back).
 */
export class FrameCounter {
  /** Data frames with FIN seen (messages, when the server does not fragment). */
  messages = 0;
  /** Payload bytes of data frames seen. */
  payloadBytes = 0;
  /** The close code of the server's close frame (1005 when empty), or null before one arrived. */
  closeCode: number | null = null;
  private readonly header = Buffer.alloc(14);
  private headerHave = 0;
  private payloadLeft = 0;
  private opcode = 0;
  private fin = false;
  private control: number[] | null = null;
  /**
   * The first data message, kept when asked for so that the client can check what a server echoes: its payload
   * (unmasked, still compressed when `firstCompressed`), or null until it is complete.
   */
  first: Buffer | null = null;
  /** Whether the first message came with RSV1 (permessage-deflate). */
  firstCompressed = false;
  /** Pieces of the first message while it arrives (null when not kept, or once complete). */
  private firstParts: Buffer[] | null;
  /** Pieces of the current frame of the first message, still masked, and its masking key. */
  private frameParts: Buffer[] = [];
  private maskKey: Buffer | null = null;
  /** The start of the current data message's payload, for `onMessage` (null when nobody asked). */
  private readonly prefix: Buffer | null;
  private prefixHave = 0;

  /**
   * @param keepFirst keep the first data message's payload (in `first`); the others are only counted
   * @param onMessage called at the end of each data message with the first `prefixLength` bytes of its payload (all of
   *   it when shorter), in a buffer reused for the next message: the room workloads read an event name and a sequence
   *   number there without copying whole payloads. Server frames only (the bytes are not unmasked).
   */
  constructor(keepFirst = false, private readonly onMessage: ((prefix: Buffer) => void) | null = null, prefixLength = 64) {
    this.firstParts = keepFirst ? [] : null;
    this.prefix = onMessage === null ? null : Buffer.alloc(prefixLength);
  }

  /** Feeds one read; returns how many messages it completed. */
  push(chunk: Buffer): number {
    const before = this.messages;
    const length = chunk.length;
    let i = 0;
    while (i < length) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, length - i);
        if (this.control !== null) for (let j = 0; j < n; j++) this.control.push(chunk[i + j]!);
        else {
          if (this.firstParts !== null) this.frameParts.push(chunk.subarray(i, i + n));
          const prefix = this.prefix;
          if (prefix !== null && this.prefixHave < prefix.length) {
            this.prefixHave += chunk.copy(prefix, this.prefixHave, i, i + Math.min(n, prefix.length - this.prefixHave));
          }
        }
        i += n;
        this.payloadLeft -= n;
        if (this.payloadLeft === 0) this.endFrame();
        continue;
      }
      if (this.headerHave === 0 && length - i >= 2) {
        const size = headerSize(chunk[i + 1]!);
        if (length - i >= size) {
          this.startFrame(chunk, i);
          i += size;
          continue;
        }
      }
      this.header[this.headerHave++] = chunk[i++]!;
      if (this.headerHave >= 2 && this.headerHave === headerSize(this.header[1]!)) {
        this.headerHave = 0;
        this.startFrame(this.header, 0);
      }
    }
    return this.messages - before;
  }

  private startFrame(source: Buffer, at: number): void {
    const b0 = source[at]!;
    const length7 = source[at + 1]! & 0x7f;
    this.opcode = b0 & 0x0f;
    this.fin = (b0 & FIN) !== 0;
    let length = length7;
    if (length7 === 126) length = source.readUInt16BE(at + 2);
    else if (length7 === 127) length = source.readUInt32BE(at + 2) * 2 ** 32 + source.readUInt32BE(at + 6);
    this.control = this.opcode >= OP_CLOSE ? [] : null;
    if (this.control === null) this.payloadBytes += length;
    if (this.firstParts !== null && this.control === null) {
      if (this.firstParts.length === 0 && this.opcode !== 0) this.firstCompressed = (b0 & RSV1) !== 0;
      // The raw TCP echo sends the client's masked frames back: the key follows the length.
      const size = headerSize(source[at + 1]!);
      this.maskKey = (source[at + 1]! & MASK_BIT) !== 0 ? Buffer.from(source.subarray(at + size - 4, at + size)) : null;
    }
    this.payloadLeft = length;
    if (length === 0) this.endFrame();
  }

  private endFrame(): void {
    if (this.control === null) {
      if (this.firstParts !== null) this.keepFrame();
      if (this.fin) {
        this.messages++;
        if (this.prefix !== null) {
          const have = this.prefixHave;
          this.prefixHave = 0;
          this.onMessage!(this.prefix.subarray(0, have));
        }
      }
      return;
    }
    if (this.opcode === OP_CLOSE) {
      const bytes = this.control;
      this.closeCode = bytes.length >= 2 ? (bytes[0]! << 8) | bytes[1]! : 1005;
    }
    this.control = null;
  }

  /** Adds the frame that just ended to the first message, unmasked; completes the message on FIN. */
  private keepFrame(): void {
    const payload = Buffer.concat(this.frameParts);
    this.frameParts = [];
    const key = this.maskKey;
    if (key !== null) for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    this.firstParts!.push(payload);
    if (!this.fin) return;
    this.first = Buffer.concat(this.firstParts!);
    this.firstParts = null;
  }
}

function headerSize(b1: number): number {
  const length7 = b1 & 0x7f;
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + ((b1 & MASK_BIT) !== 0 ? 4 : 0);
}

/** An open WebSocket (or raw TCP) connection of the load client. */
export interface ClientSocket {
  readonly socket: net.Socket;
  /** Bytes that followed the 101 response in the same read. */
  readonly head: Buffer;
  /** Whether the server accepted permessage-deflate. */
  readonly deflate: boolean;
}

/** One handshake request, built once per target and reused by every connection (the key need not be unique). */
export function handshakeRequest(port: number, path: string, extensions: string | null): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      (extensions === null ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) +
      '\r\n',
  );
}

const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * Connects and performs the opening handshake (or nothing more, for the raw TCP echo); over TLS (wss) when given the
 * certificate to trust, with a full TLS handshake each time (no session is reused).
 * @throws Error when the server answers anything but 101, or the connection fails
 */
export function openSocket(port: number, request: Buffer | null, ca?: Buffer): Promise<ClientSocket> {
  return new Promise((resolve, reject) => {
    const socket =
      ca === undefined
        ? net.connect({ port, host: '127.0.0.1', noDelay: true })
        : tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca }).setNoDelay(true);
    socket.once('error', reject);
    if (request === null) {
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve({ socket, head: Buffer.alloc(0), deflate: false });
      });
      return;
    }
    let received: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const end = received.indexOf(HEADER_END);
      if (end < 0) return;
      socket.removeListener('data', onData);
      socket.removeListener('error', reject);
      socket.pause();
      const head = received.toString('latin1', 0, end);
      if (!head.startsWith('HTTP/1.1 101')) {
        socket.destroy();
        reject(new Error(`handshake refused: ${head.split('\r\n')[0]}`));
        return;
      }
      const deflate = /^sec-websocket-extensions:.*permessage-deflate/im.test(head);
      resolve({ socket, head: received.subarray(end + HEADER_END.length), deflate });
    };
    socket.on('data', onData);
    // A TLS socket buffers what is written before its handshake and sends it once secure.
    socket.write(request);
  });
}
