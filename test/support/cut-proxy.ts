/**
 * A TCP proxy on 127.0.0.1 that the tests of sessions cut: `cut()` destroys every connection through it at once, in
 * both directions, as a train tunnel or a Wi-Fi hand-over would (no close frame, no FIN seen by the app first);
 * `block()` makes it refuse new connections (accept and destroy) until `unblock()`. Each connection goes to the first
 * of its upstream ports that accepts it, so that clients move to another instance when one is down.
 */
import { once } from 'node:events';
import net from 'node:net';

export interface CutProxy {
  readonly port: number;
  /** Connections currently carried. */
  readonly connections: number;
  /** Destroys every connection through the proxy. */
  cut(): void;
  /** New connections are destroyed as soon as accepted. */
  block(): void;
  unblock(): void;
  /** Where new connections go, in order of preference. */
  setUpstreams(ports: readonly number[]): void;
  close(): Promise<void>;
}

export async function startCutProxy(upstreams: readonly number[]): Promise<CutProxy> {
  let targets = [...upstreams];
  let blocked = false;
  const pairs = new Set<{ readonly down: net.Socket; up: net.Socket | undefined }>();
  const server = net.createServer((down) => {
    if (blocked) {
      down.destroy();
      return;
    }
    const pair: { readonly down: net.Socket; up: net.Socket | undefined } = { down, up: undefined };
    pairs.add(pair);
    down.pause();
    down.on('error', () => undefined);
    down.on('close', () => {
      pair.up?.destroy();
      pairs.delete(pair);
    });
    const tryUpstream = (index: number): void => {
      if (down.destroyed) return;
      if (index >= targets.length) {
        down.destroy();
        return;
      }
      const up = net.connect(targets[index]!, '127.0.0.1');
      pair.up = up;
      let connected = false;
      up.once('connect', () => {
        connected = true;
        down.pipe(up);
        up.pipe(down);
        down.resume();
      });
      up.on('error', () => {
        if (!connected) tryUpstream(index + 1);
      });
      up.on('close', () => {
        if (connected) down.destroy();
      });
    };
    tryUpstream(0);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const cut = (): void => {
    for (const { down, up } of pairs) {
      down.destroy();
      up?.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    get connections() {
      return pairs.size;
    },
    cut,
    block() {
      blocked = true;
    },
    unblock() {
      blocked = false;
    },
    setUpstreams(ports) {
      targets = [...ports];
    },
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
