/**
 * A tunnel through a SOCKS5 proxy (RFC 1928), with user name and password from the proxy URL (RFC 1929): the I/O
 * around the core's `Socks5Handshake`. `socks5h://` lets the proxy resolve the server's name (the client makes no
 * DNS query, which is what a proxy on the way to a private network needs); `socks5://` resolves it here and sends
 * the address.
 */
import { once } from 'node:events';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ProxyUrl } from '../config/index.js';
import { Socks5Handshake, type Socks5Step } from '../protocol/socks5.js';

/** What the tunnel request needs besides the proxy. */
export interface SocksTunnelOptions {
  /** The tunnel's destination (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  /** Called with every socket opened, so that the caller's deadline can destroy it. */
  readonly track: (socket: Duplex) => void;
}

/**
 * Connects to the SOCKS5 proxy and asks it for a tunnel.
 * @returns the connection to the proxy, now a tunnel to `host:port`
 * @throws ProxyError when the proxy refuses (the SOCKS reply code is `status`), rejects the credentials, or breaks
 *   the protocol
 * @throws ConfigError for a destination or credentials that SOCKS5 cannot carry
 * @throws Error from `dns` (socks5:// only) or `net` when the name cannot be resolved or the proxy reached
 */
export async function openSocksTunnel(proxy: ProxyUrl, options: SocksTunnelOptions): Promise<net.Socket> {
  const host = proxy.scheme === 'socks5' && net.isIP(options.host) === 0 ? (await lookup(options.host)).address : options.host;
  const handshake = new Socks5Handshake({ proxy: proxy.href, host, port: options.port, credentials: proxy.credentials });
  const socket = net.connect({ host: proxy.host, port: proxy.port, noDelay: true });
  options.track(socket);
  await once(socket, 'connect');
  socket.write(handshake.start());
  const rest = await new Promise<Buffer>((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      socket.pause();
    };
    const onData = (chunk: Buffer): void => {
      let step: Socks5Step;
      try {
        step = handshake.receiveData(chunk);
      } catch (error) {
        cleanup();
        reject(error);
        return;
      }
      if (step.done) {
        cleanup();
        resolve(step.rest);
      } else if (step.send !== null) {
        socket.write(step.send);
      }
    };
    const onEnd = (): void => {
      cleanup();
      try {
        handshake.end();
      } catch (error) {
        reject(error);
      }
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
    socket.resume();
  });
  if (rest.length > 0) socket.unshift(rest);
  return socket;
}
