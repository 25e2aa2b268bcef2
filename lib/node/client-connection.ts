/**
 * The client side's sans-I/O `Connection` once the server accepted the handshake, over HTTP/1.1 (client.ts) or an
 * HTTP/2 stream (http2-client.ts): the accepted extensions checked against what was offered, the message and
 * fragment limits, and permessage-deflate when the server took it.
 */
import type { ResolvedConfig } from '../config/index.js';
import { Connection } from '../protocol/connection.js';
import { acceptDeflateResponse } from '../protocol/extensions.js';
import { createDeflateCodec } from './deflate.js';

/** @throws InvalidExtensionsError when the server accepted an extension or parameter that was not offered */
export function clientConnection(extensions: string, config: Readonly<ResolvedConfig>): Connection {
  const params = acceptDeflateResponse(extensions === '' ? undefined : extensions, config.compression);
  return new Connection({
    side: 'client',
    maxMessageSize: config.limits.maxMessageSize,
    maxFragments: config.limits.maxFragments,
    codec: params === null ? null : createDeflateCodec(params, config.compression!.memLevel),
    compressionThreshold: config.compression?.threshold,
  });
}
