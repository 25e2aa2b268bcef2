/**
 * The app's gateways and providers, read from Nest's module container. The adapter reads it once per gateway server,
 * in `create()`, and keeps what it found: a handshake then costs no walk over every provider of every module (it
 * used to, to find the gateway class of the port and path).
 *
 * `app.get()` cannot be used to probe: the app that `NestFactory.create` returns runs it in an exceptions zone that
 * exits the process on an unknown token (abortOnError), so providers are looked up in the module container instead.
 */
import type { INestApplicationContext } from '@nestjs/common';
import { ModuleRef, ModulesContainer } from '@nestjs/core';
import { GATEWAY_METADATA, GATEWAY_OPTIONS, PORT_METADATA } from '@nestjs/websockets/constants.js';

/** One gateway of the app: its class, its instance, where it serves, and the module it belongs to. */
export interface GatewayEntry {
  readonly metatype: Function;
  readonly instance: Record<string, unknown>;
  /** `@WebSocketGateway(port)`: 0 for the app's server. */
  readonly port: number;
  readonly path: string | undefined;
  /** The `ModuleRef` of the module that declares it, where its own dependencies resolve. */
  readonly moduleRef: ModuleRef | undefined;
}

export class GatewayRegistry {
  readonly #app: INestApplicationContext | undefined;

  constructor(app: INestApplicationContext | undefined) {
    this.#app = app;
  }

  /** The gateways of the app (read anew on each call: `create()` calls it once per server). */
  gateways(): GatewayEntry[] {
    const modules = this.#modules();
    if (modules === undefined) return [];
    const found: GatewayEntry[] = [];
    for (const module of modules.values()) {
      for (const wrapper of module.providers.values()) {
        const { metatype, instance } = wrapper as { metatype?: unknown; instance?: unknown };
        if (typeof metatype !== 'function' || typeof instance !== 'object' || instance === null) continue;
        if (Reflect.getMetadata(GATEWAY_METADATA, metatype) !== true) continue;
        const options = (Reflect.getMetadata(GATEWAY_OPTIONS, metatype) ?? {}) as { path?: string };
        found.push({
          metatype,
          instance: instance as Record<string, unknown>,
          port: (Reflect.getMetadata(PORT_METADATA, metatype) as number | undefined) ?? 0,
          path: options.path,
          moduleRef: module.providers.get(ModuleRef)?.instance as ModuleRef | undefined,
        });
      }
    }
    return found;
  }

  /** The gateway that serves `port` and `path`, if any. */
  find(port: number, path: string | undefined): GatewayEntry | undefined {
    return this.gateways().find((gateway) => gateway.port === port && gateway.path === path);
  }

  /** Gets a provider of the app without failing when it is not there. */
  lookup<T>(token: abstract new (...args: never[]) => T): T | undefined {
    for (const module of this.#modules()?.values() ?? []) {
      const instance: unknown = module.providers.get(token)?.instance;
      if (instance !== undefined && instance !== null) return instance as T;
    }
    return undefined;
  }

  /** Nest's container of every module; always registered by Nest's core, so `get()` cannot fail on it. */
  #modules(): ModulesContainer | undefined {
    if (this.#app === undefined) return undefined;
    try {
      return this.#app.get(ModulesContainer, { strict: false });
    } catch {
      return undefined;
    }
  }
}

/** How messages name a gateway: `Gateway ChatGateway`, or its port and path when it has no class here. */
export function gatewayName(gateway: GatewayEntry | undefined, port: number, path: string | undefined): string {
  return gateway !== undefined ? `Gateway ${gateway.metatype.name}` : `Gateway on port ${port}${path === undefined ? '' : ` path ${path}`}`;
}
