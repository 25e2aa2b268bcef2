/**
 * One `'upgrade'` listener per HTTP server, shared by every `WebSocketServer` attached to it.
 *
 * Node emits `'upgrade'` to every listener, so several servers each listening on their own would all answer the
 * same request (or all ignore it, leaving the socket to hang). The router hands each request to the first
 * `WebSocketServer` that owns its path; when none does and no other `'upgrade'` listener is installed, it answers
 * 404 itself rather than dropping the socket.
 *
 * A server that closes is retired rather than forgotten: until the HTTP server itself closes, its paths still reach
 * it, and it answers 503 (shutting down). Forgotten, its path would fall through to the HTTP app (Express answers
 * 404) while the app drains its connections, and clients told to reconnect (1001) would read a 404 as "no such
 * endpoint" and stop for good.
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
  rejectUnowned(req: IncomingMessage, socket: Duplex): void;
}

/** Routes one HTTP server's upgrade requests to the `WebSocketServer`s attached to it. */
export class UpgradeRouter {
  readonly #server: HttpServer;
  readonly #targets: UpgradeTarget[] = [];
  /** Targets that closed: they answer their paths (503) until the HTTP server closes. */
  readonly #retired: UpgradeTarget[] = [];
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
    for (const list of [router.#targets, router.#retired]) {
      const index = list.indexOf(target);
      if (index >= 0) list.splice(index, 1);
    }
    if (router.#targets.length === 0 && router.#retired.length === 0) {
      router.#server.off('upgrade', router.#listener);
      ROUTERS.delete(server);
    }
  }

  /**
   * `target` has closed: a live target with the same path wins over it, and it keeps answering its paths until the
   * HTTP server closes, when it is detached.
   */
  static retire(server: HttpServer, target: UpgradeTarget): void {
    const router = ROUTERS.get(server);
    if (router === undefined) return;
    const index = router.#targets.indexOf(target);
    if (index < 0) return;
    router.#targets.splice(index, 1);
    router.#retired.push(target);
    if (!server.listening) UpgradeRouter.detach(server, target);
    else server.once('close', () => UpgradeRouter.detach(server, target));
  }

  #route(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const owner = this.#targets.find((target) => target.ownsPath(req.url)) ?? this.#retired.find((target) => target.ownsPath(req.url));
    if (owner !== undefined) {
      owner.handleUpgrade(req, socket, head);
      return;
    }
    // Another 'upgrade' listener (a GraphQL or proxy library, say) may own this path: leave the socket to it.
    if (this.#server.listenerCount('upgrade') > 1) return;
    (this.#targets[0] ?? this.#retired[0])?.rejectUnowned(req, socket);
  }
}

const ROUTERS = new WeakMap<HttpServer, UpgradeRouter>();
