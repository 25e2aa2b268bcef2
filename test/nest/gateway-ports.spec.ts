/** `gatewayPorts` / WEBSOCKETS_GATEWAY_PORTS: where gateways on a port of their own listen, and clear errors for bad values. */
import { describe, expect, it } from '@jest/globals';
import { listenPortOf, resolveGatewayPorts } from '../../lib/config/index.js';
import { ConfigError } from '../../lib/errors.js';
import { resolveWebSocketsOptions } from '../../lib/nest/websockets-options.js';

describe('gatewayPorts', () => {
  it('maps decorator ports, `*` for the rest, from the option or the variable; the option wins', () => {
    const fromOption = resolveGatewayPorts({ 8081: 9001, '*': 0 }, {});
    expect([listenPortOf(fromOption, 8081), listenPortOf(fromOption, 8082)]).toEqual([9001, 0]);
    const fromEnv = resolveGatewayPorts(undefined, { WEBSOCKETS_GATEWAY_PORTS: ' 8081 = 9001 , 8082=0' });
    expect([listenPortOf(fromEnv, 8081), listenPortOf(fromEnv, 8082), listenPortOf(fromEnv, 8083)]).toEqual([9001, 0, 8083]);
    expect(listenPortOf(resolveGatewayPorts({ 8081: 1 }, { WEBSOCKETS_GATEWAY_PORTS: '*=0' }), 8082)).toBe(8082);
    expect(resolveWebSocketsOptions({ env: { WEBSOCKETS_GATEWAY_PORTS: '*=0' } }).gatewayPorts.get('*')).toBe(0);
    expect(resolveWebSocketsOptions({ env: {} }).gatewayPorts.size).toBe(0);
  });

  it('refuses a key or a port out of range, naming the option or the variable', () => {
    const error = (run: () => unknown): ConfigError => {
      try {
        run();
      } catch (caught) {
        return caught as ConfigError;
      }
      throw new Error('did not throw');
    };
    expect(error(() => resolveGatewayPorts({ 8081: 70000 }, {})).message).toBe(
      'option gatewayPorts must be a map from decorator ports (or "*") to ports from 0 to 65535, e.g. { 8081: 9001, "*": 0 }; got "8081=70000" (option gatewayPorts, env WEBSOCKETS_GATEWAY_PORTS)',
    );
    expect(error(() => resolveGatewayPorts({ abc: 1 }, {}))).toBeInstanceOf(ConfigError);
    expect(error(() => resolveGatewayPorts([1], {}))).toBeInstanceOf(ConfigError);
    expect(error(() => resolveGatewayPorts(undefined, { WEBSOCKETS_GATEWAY_PORTS: '8081:9001' })).message).toBe(
      'WEBSOCKETS_GATEWAY_PORTS must be pairs port=port separated by commas, e.g. 8081=9001,*=0; got "8081:9001" (option gatewayPorts, env WEBSOCKETS_GATEWAY_PORTS)',
    );
    expect(error(() => resolveWebSocketsOptions({ env: { WEBSOCKETS_GATEWAY_PORTS: '0=1' } }))).toMatchObject({ code: 'WS_ERR_CONFIG', setting: 'gatewayPorts' });
  });
});
