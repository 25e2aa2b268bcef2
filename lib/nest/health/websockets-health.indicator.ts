/**
 * `WebSocketsHealthIndicator`: a `@nestjs/terminus` health indicator for the gateways, provided and exported by
 * `WebSocketsModule`. It reports every gateway server (listening or not, its connections against its
 * `maxConnections`) and the broadcast bus (reachable, subscribed, round trip), and is:
 * - `down` when a server is not listening, a server is full (`connections >= maxConnections`), or the bus is
 *   unreachable or not subscribed (Redis stopped: broadcasts stay on this instance);
 * - `degraded` when a server is at `degradedAt` (90 %) of its `maxConnections` or more;
 * - `up` otherwise.
 *
 * Its result has terminus's shape (`{ [key]: { status, ...details } }`), built here, so that this package loads
 * nothing of `@nestjs/terminus` (an optional peer) and works with any version that reads that shape:
 *   `this.health.check([() => this.websockets.isHealthy('websockets')])`.
 */
import { Injectable } from '@nestjs/common';
import type { BroadcastBusHealth } from '../../broadcast/broadcast-bus.js';
import { WebSocketsService } from '../websockets.service.js';

/** The status of a terminus indicator. */
export type WebSocketsHealthStatus = 'up' | 'degraded' | 'down';

/** One gateway server in the report. */
export interface WebSocketsServerHealth {
  readonly port: number;
  readonly path: string | null;
  readonly listening: boolean;
  readonly connections: number;
  readonly maxConnections: number | null;
}

/** What the indicator reports under its key. */
export interface WebSocketsHealthDetails {
  readonly status: WebSocketsHealthStatus;
  readonly servers: readonly WebSocketsServerHealth[];
  /** The bus, or `null` before the first gateway server exists. */
  readonly bus: BroadcastBusHealth | null;
  /** Why it is not `up`. */
  readonly message?: string;
}

/** terminus's `HealthIndicatorResult`: `{ [key]: { status, ... } }`. */
export type WebSocketsHealthResult<Key extends string = string> = Record<Key, WebSocketsHealthDetails>;

/** Options of one check. */
export interface WebSocketsHealthOptions {
  /** Share of `maxConnections` from which a server is `degraded`. @default 0.9 */
  readonly degradedAt?: number;
  /** How long the bus may take to answer. @default 1000 */
  readonly timeoutMs?: number;
}

const DEFAULT_DEGRADED_AT = 0.9;
const DEFAULT_TIMEOUT_MS = 1000;

@Injectable()
export class WebSocketsHealthIndicator {
  constructor(private readonly service: WebSocketsService) {}

  /** The report under `key`; never throws (terminus turns a `down` status into 503). */
  async isHealthy<const Key extends string = 'websockets'>(key: Key = 'websockets' as Key, options: WebSocketsHealthOptions = {}): Promise<WebSocketsHealthResult<Key>> {
    const degradedAt = options.degradedAt ?? DEFAULT_DEGRADED_AT;
    const servers = this.service.servers().map(
      ({ port, path, connections, maxConnections, server }): WebSocketsServerHealth => ({ port, path, listening: server.address() !== null, connections, maxConnections }),
    );
    const bus = this.service.bus;
    const busHealth: BroadcastBusHealth | null =
      bus === undefined ? null : bus.health !== undefined ? await bus.health(options.timeoutMs ?? DEFAULT_TIMEOUT_MS) : { kind: bus.constructor.name, reachable: true, subscribed: true, lagMs: null };
    const problems: string[] = [];
    const warnings: string[] = [];
    if (servers.length === 0) problems.push('no gateway server (the app is not started)');
    for (const server of servers) {
      const where = `port ${server.port}${server.path === null ? '' : ` path ${server.path}`}`;
      if (!server.listening) problems.push(`${where} is not listening`);
      if (server.maxConnections === null) continue;
      if (server.connections >= server.maxConnections) problems.push(`${where} is full (${server.connections} of maxConnections ${server.maxConnections})`);
      else if (server.connections >= degradedAt * server.maxConnections) warnings.push(`${where} has ${server.connections} of maxConnections ${server.maxConnections}`);
    }
    if (busHealth !== null && !busHealth.reachable) problems.push(`the ${busHealth.kind} bus is unreachable${busHealth.error === undefined ? '' : `: ${busHealth.error}`}`);
    else if (busHealth !== null && !busHealth.subscribed) problems.push(`the ${busHealth.kind} bus is not subscribed${busHealth.error === undefined ? '' : `: ${busHealth.error}`}`);
    const status: WebSocketsHealthStatus = problems.length > 0 ? 'down' : warnings.length > 0 ? 'degraded' : 'up';
    const message = [...problems, ...warnings].join('; ');
    const details: WebSocketsHealthDetails = message === '' ? { status, servers, bus: busHealth } : { status, servers, bus: busHealth, message };
    return { [key]: details } as WebSocketsHealthResult<Key>;
  }
}
