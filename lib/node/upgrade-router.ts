/**
 * One `'upgrade'` listener per HTTP server, shared by every `WebSocketServer` attached to it.
 *
 * Node emits `'upgrade'` to every listener, so several servers each listening on their own would all answer the
 * same request (or all ignore it, leaving the socket to hang). The router hands each request to the first
 * `WebSocketServer` that owns its path; when none does and no other `'upgrade'` listener is installed, it answers
 * 404 itself rather than dropping the socket.
 */
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/** What the router needs from a server attached to it (implemented by `WebSocketServer`). */
export interface UpgradeTarget {
  /** Whether this target handles `url`'s path. */
  ownsPath(url: string | undefined): boolean;
  /** Takes over the socket (handshake, then the connection). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Answers an upgrade that no one owns with 404 (the target supplies its `Server` header). */
  rejectUnowned(socket: Duplex): void;
}

/** Routes one HTTP server's upgrade requests to the `WebSocketServer`s attached to it. */
export class UpgradeRouter {
  readonly #server: HttpServer;
  readonly #targets: UpgradeTarget[] = [];
  readonly #listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.#route(req, socket, head);

  private constructor(server: HttpServer) {
    this.#server = server;
    server.on('upgrade', this.#listener);
  }

  /** Registers `target` on `server`, creating the server's router on first use. */
  static attach(server: HttpServer, target: UpgradeTarget): void {
    let router = ROUTERS.get(server);
    if (router === undefined) {
      router = new UpgradeRouter(server);
      ROUTERS.set(server, router);
    }
    if (!router.#targets.includes(target)) router.#targets.push(target);
  }

  /** Unregisters `target`; the router removes its listener when no target is left. */
  static detach(server: HttpServer, target: UpgradeTarget): void {
    const router = ROUTERS.get(server);
    if (router === undefined) return;
    const index = router.#targets.indexOf(target);
    if (index >= 0) router.#targets.splice(index, 1);
    if (router.#targets.length === 0) {
      router.#server.off('upgrade', router.#listener);
      ROUTERS.delete(server);
    }
  }

  #route(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const owner = this.#targets.find((target) => target.ownsPath(req.url));
    if (owner !== undefined) {
      owner.handleUpgrade(req, socket, head);
      return;
    }
    // Another 'upgrade' listener (a GraphQL or proxy library, say) may own this path: leave the socket to it.
    if (this.#server.listenerCount('upgrade') > 1) return;
    this.#targets[0]?.rejectUnowned(socket);
  }
}

const ROUTERS = new WeakMap<HttpServer, UpgradeRouter>();
