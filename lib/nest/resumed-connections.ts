/**
 * A resumed session is the same client as before: its rooms, `client.data` and missed messages are restored, so a
 * gateway's `handleConnection` would only do its side effects twice (count the user online again, send a welcome
 * again). Nest calls the hook on every connection, from a subscription the adapter cannot filter, so each gateway
 * instance of a server with sessions gets its `handleConnection` wrapped once: a resumed connection skips it, unless
 * the gateway sets `handleResumedConnections: true` (then it runs, and `client.session.resumed` tells which).
 */
import type { GatewayEntry } from './gateway-registry.js';
import { GatewayWebSocket } from './gateway-websocket.js';

const wrapped = new WeakSet<object>();

/** Wraps the `handleConnection` of `gateways` (once per instance) to skip resumed sessions. */
export function skipResumedConnections(gateways: readonly GatewayEntry[]): void {
  for (const { instance } of gateways) {
    if (wrapped.has(instance)) continue;
    wrapped.add(instance);
    const original = instance['handleConnection'];
    if (typeof original !== 'function') continue;
    Object.defineProperty(instance, 'handleConnection', {
      configurable: true,
      writable: true,
      value: function (this: unknown, client: unknown, ...rest: unknown[]): unknown {
        if (client instanceof GatewayWebSocket && client.session?.resumed === true) return undefined;
        return original.call(this, client, ...rest);
      },
    });
  }
}
