/**
 * Handshake guards: Nest `CanActivate`s (with dependency injection) that run before the 101 and can refuse the
 * connection with a status and a body. A guard class that is a provider of the app is used as is; another is built
 * once in the gateway's module, where the gateway's own dependencies resolve.
 */
import { HttpException, type CanActivate, type ExecutionContext, type Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { WsException } from '@nestjs/websockets';
import { isObservable, lastValueFrom } from 'rxjs';
import type { HandshakeDecision, HandshakeInfo } from '../node/server.js';
import { errorText } from './error-text.js';
import type { GatewayEntry, GatewayRegistry } from './gateway-registry.js';
import type { WebSocketsGatewayServer } from './gateway-server.js';
import { toHandshakeRequest, type WebSocketsHandshakeRequest } from './handshake-request.js';
import type { HandshakeGuard } from './websockets-options.interface.js';

const STATUS_FORBIDDEN = 403;
const STATUS_INTERNAL_ERROR = 500;

export class HandshakeGuards {
  readonly #instances = new Map<HandshakeGuard, Promise<CanActivate>>();

  constructor(
    private readonly registry: GatewayRegistry,
    private readonly logger: Logger,
    /** Logs a routine event (a refusal) when `verboseLogs` is on. */
    private readonly routine: (message: string) => void = () => undefined,
  ) {}

  /**
   * Runs `guards` in order on a handshake: the first that refuses (returns false, throws) decides. Accepts with the
   * handshake request attached (`client.data`), which `handleConnection` then gets.
   */
  async check(
    info: HandshakeInfo,
    guards: readonly HandshakeGuard[],
    gateway: GatewayEntry | undefined,
    server: WebSocketsGatewayServer | undefined,
  ): Promise<HandshakeDecision> {
    const request = toHandshakeRequest(info);
    for (const guard of guards) {
      let allowed: boolean;
      try {
        const instance = await this.#instance(guard, gateway);
        const result = instance.canActivate(new HandshakeExecutionContext(request, gateway?.metatype, server));
        allowed = Boolean(isObservable(result) ? await lastValueFrom(result) : await result);
      } catch (error) {
        return { reject: this.#refusalFor(error, request) };
      }
      if (!allowed) {
        this.routine(`handshake from ${request.remoteAddress} refused by ${guardName(guard)}`);
        return { reject: { status: STATUS_FORBIDDEN, body: 'Forbidden' } };
      }
    }
    return { data: request };
  }

  /** The refusal for an error thrown by a guard: an `HttpException`'s status and message, else 500 (logged). */
  #refusalFor(error: unknown, request: WebSocketsHandshakeRequest): { status: number; body: string } {
    if (error instanceof HttpException) {
      const status = error.getStatus();
      this.routine(`handshake from ${request.remoteAddress} refused with ${status}: ${error.message}`);
      return { status: status >= 400 && status <= 599 ? status : STATUS_FORBIDDEN, body: error.message };
    }
    if (error instanceof WsException) {
      const body = typeof error.getError() === 'string' ? (error.getError() as string) : error.message;
      this.routine(`handshake from ${request.remoteAddress} refused: ${body}`);
      return { status: STATUS_FORBIDDEN, body };
    }
    this.logger.error(`a handshake guard failed: ${errorText(error)}`);
    return { status: STATUS_INTERNAL_ERROR, body: 'Internal Server Error' };
  }

  /** A guard instance: an object as is; a class from the app (a provider) or made with dependency injection. */
  #instance(guard: HandshakeGuard, gateway: GatewayEntry | undefined): Promise<CanActivate> {
    if (typeof guard !== 'function') return Promise.resolve(guard);
    let instance = this.#instances.get(guard);
    if (instance === undefined) {
      instance = (async () => {
        const provided = this.registry.lookup(guard);
        if (provided !== undefined) return provided;
        // Not a provider: build it in the gateway's module, where the gateway's own dependencies resolve.
        const moduleRef = gateway?.moduleRef ?? this.registry.lookup(ModuleRef);
        if (moduleRef === undefined) return new guard();
        return moduleRef.create(guard);
      })();
      this.#instances.set(guard, instance);
    }
    return instance;
  }
}

function guardName(guard: HandshakeGuard): string {
  return typeof guard === 'function' ? guard.name : (guard.constructor?.name ?? 'a guard');
}

/**
 * The `ExecutionContext` of a handshake guard: type `'http'`, the request is the `WebSocketsHandshakeRequest` and
 * there is no response yet. `getClass()` is the gateway (so class-level metadata such as a `@Public()` flag can be
 * read with `Reflector`); `getHandler()` its `handleConnection` (or a placeholder).
 */
class HandshakeExecutionContext implements ExecutionContext {
  readonly #args: unknown[];
  constructor(
    private readonly request: WebSocketsHandshakeRequest,
    private readonly gatewayClass: Function | undefined,
    server: WebSocketsGatewayServer | undefined,
  ) {
    this.#args = [request, undefined, server];
  }
  getClass<T = unknown>(): T {
    return (this.gatewayClass ?? HandshakeGuards) as T;
  }
  getHandler(): Function {
    const prototype = (this.gatewayClass as { prototype?: Record<string, unknown> } | undefined)?.prototype;
    const handler = prototype?.handleConnection;
    return typeof handler === 'function' ? handler : handshake;
  }
  getArgs<T extends unknown[] = unknown[]>(): T {
    return this.#args as T;
  }
  getArgByIndex<T = unknown>(index: number): T {
    return this.#args[index] as T;
  }
  switchToRpc(): ReturnType<ExecutionContext['switchToRpc']> {
    return { getData: <T>() => this.request as T, getContext: <T>() => undefined as T };
  }
  switchToHttp(): ReturnType<ExecutionContext['switchToHttp']> {
    return {
      getRequest: <T>() => this.request as T,
      getResponse: <T>() => undefined as T,
      getNext: <T>() => undefined as T,
    };
  }
  switchToWs(): ReturnType<ExecutionContext['switchToWs']> {
    return { getClient: <T>() => undefined as T, getData: <T>() => this.request as T, getPattern: () => 'handshake' };
  }
  getType<TContext extends string = 'http'>(): TContext {
    return 'http' as TContext;
  }
}

/** Placeholder `getHandler()` of a handshake for a gateway without `handleConnection`. */
function handshake(): void {}
