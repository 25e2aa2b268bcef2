/**
 * Where gateways on a port of their own listen (`gatewayPorts`, `WEBSOCKETS_GATEWAY_PORTS`): the port written in
 * `@WebSocketGateway(port)` is fixed when the class is declared, so an app that takes its ports from configuration,
 * or a test that wants ports the system picks (0), maps them here. Keys are decorator ports, or `*` for every one;
 * the variable reads `8081=9001,*=0`. A gateway without a port (the app's server) is never mapped.
 */
import { SETTINGS } from './settings.js';
import { invalid, type Environment } from './setting-values.js';

/** The port to listen on for each decorator port (a number key), or for every one (`*`). */
export type GatewayPorts = Readonly<Record<string, number>>;

/** The resolved mapping: decorator port to the port to listen on, `'*'` for the rest. */
export type ResolvedGatewayPorts = ReadonlyMap<number | '*', number>;

const MAX_PORT = 65_535;

function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_PORT;
}

/** A decorator port (1-65535) or `*`. */
function keyOf(raw: string): number | '*' | undefined {
  if (raw === '*') return '*';
  if (!/^\d{1,5}$/.test(raw)) return undefined;
  const port = Number(raw);
  return port >= 1 && port <= MAX_PORT ? port : undefined;
}

/**
 * The mapping: the option, else WEBSOCKETS_GATEWAY_PORTS (`8081=9001,*=0`), else none.
 * @throws ConfigError for a key that is not a port (1-65535) or `*`, or a value that is not a port (0-65535)
 */
export function resolveGatewayPorts(option: unknown, env: Environment): ResolvedGatewayPorts {
  const expected = 'a map from decorator ports (or "*") to ports from 0 to 65535, e.g. { 8081: 9001, "*": 0 }';
  const ports = new Map<number | '*', number>();
  if (option !== undefined && option !== null) {
    if (typeof option !== 'object' || Array.isArray(option)) throw invalid('gatewayPorts', option, expected, 'option');
    for (const [rawKey, value] of Object.entries(option)) {
      const key = keyOf(rawKey);
      if (key === undefined || !isPort(value)) throw invalid('gatewayPorts', `${rawKey}=${String(value)}`, expected, 'option');
      ports.set(key, value);
    }
    return ports;
  }
  const raw = env[SETTINGS.gatewayPorts.env];
  if (raw === undefined || raw.trim() === '') return ports;
  for (const pair of raw.split(',')) {
    const match = /^\s*(\*|\d{1,5})\s*=\s*(\d{1,5})\s*$/.exec(pair);
    const key = match === null ? undefined : keyOf(match[1]!);
    const value = match === null ? NaN : Number(match[2]);
    if (key === undefined || !isPort(value)) throw invalid('gatewayPorts', raw, 'pairs port=port separated by commas, e.g. 8081=9001,*=0', 'env');
    ports.set(key, value);
  }
  return ports;
}

/** The port a gateway declared on `port` listens on. */
export function listenPortOf(ports: ResolvedGatewayPorts, port: number): number {
  return ports.get(port) ?? ports.get('*') ?? port;
}
