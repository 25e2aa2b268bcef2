/**
 * A workaround for a Nest limitation: Nest calls a gateway's `handleConnection` / `handleDisconnect` from an RxJS
 * subscription, where a throw (or a rejected promise) becomes an uncaught error that stops the process
 * (nestjs/nest#882, #2028, #7212: an exception in `handleConnection` crashes the server). Each gateway instance's
 * hooks are wrapped once, so that a failure is logged and only costs its own connection (closed with 1011).
 */
import type { Logger } from '@nestjs/common';
import { WebSocket } from '../node/websocket.js';
import { CloseCode } from '../protocol/close-codes.js';
import { errorText } from './error-text.js';
import type { GatewayEntry } from './gateway-registry.js';

const guarded = new WeakSet<object>();

/** Wraps the lifecycle hooks of each gateway not wrapped yet. */
export function guardLifecycleHooks(gateways: readonly GatewayEntry[], logger: Logger): void {
  for (const { instance, metatype } of gateways) {
    if (guarded.has(instance)) continue;
    guarded.add(instance);
    for (const hook of ['handleConnection', 'handleDisconnect'] as const) {
      const original = instance[hook];
      if (typeof original !== 'function') continue;
      const fail = (client: unknown, error: unknown): void => {
        logger.error(`${metatype.name}.${hook} failed: ${errorText(error)}`);
        if (hook === 'handleConnection' && client instanceof WebSocket && client.readyState === WebSocket.OPEN) {
          client.close(CloseCode.INTERNAL_ERROR).catch(() => undefined);
        }
      };
      Object.defineProperty(instance, hook, {
        configurable: true,
        writable: true,
        value: function (this: unknown, client: unknown, ...rest: unknown[]): unknown {
          try {
            const result: unknown = original.call(this, client, ...rest);
            if (result instanceof Promise) return result.catch((error: unknown) => fail(client, error));
            return result;
          } catch (error) {
            fail(client, error);
            return undefined;
          }
        },
      });
    }
  }
}
