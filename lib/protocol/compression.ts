/**
 * The seam between the protocol core and a compression implementation (RFC 7692 permessage-deflate).
 * Negotiation, the RSV1 rules and the message budget live in `protocol/`; the zlib work sits behind this
 * interface and is implemented in `node/deflate.ts` on Node's zlib. Implementations are synchronous: one
 * message at a time, bounded by the message limit.
 */

/** Parameters agreed in the handshake, from the point of view of this endpoint. */
export interface DeflateParams {
  /** Window bits of this endpoint's compressor (what the peer must be able to inflate). */
  readonly localMaxWindowBits: number;
  /** Window bits of the peer's compressor (what this endpoint inflates). */
  readonly remoteMaxWindowBits: number;
  /** This endpoint resets its compression context after each message. */
  readonly localNoContextTakeover: boolean;
  /** The peer resets its compression context after each message. */
  readonly remoteNoContextTakeover: boolean;
}

/** One connection's compressor and decompressor. */
export interface MessageCodec {
  /**
   * Decompresses one whole message (the concatenated payloads of its frames, without the trailing
   * 00 00 ff ff, which the implementation appends).
   * @param maxOutput the most bytes the message may inflate to; the implementation stops soon after passing it
   * @returns the inflated bytes, or `null` when they would exceed `maxOutput`
   * @throws Error when the data is not valid deflate data (the core answers 1002)
   */
  decompress(data: Buffer, maxOutput: number): Buffer | null;
  /** Compresses one whole message; the result has the trailing 00 00 ff ff removed (RFC 7692 §7.2.1). */
  compress(data: Buffer): Buffer;
}

/** Builds a codec for one connection once the handshake has agreed on parameters. */
export type CodecFactory = (params: DeflateParams, memLevel: number) => MessageCodec;
