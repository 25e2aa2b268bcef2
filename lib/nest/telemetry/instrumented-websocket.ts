/**
 * The class of gateway connections while OpenTelemetry is on: a `GatewayWebSocket` that counts what it is given to
 * send, and its exception frames (which make the outcome of the handler that runs an error). With OpenTelemetry off the
 * adapter uses `GatewayWebSocket` itself, so that sends pay nothing.
 */
import type { PreparedMessage } from '../../protocol/prepared-message.js';
import type { SendOptions, WebSocketData } from '../../node/websocket.js';
import { EXCEPTION_FRAME_PREFIX } from '../exception-frames.js';
import { GatewayWebSocket } from '../gateway-websocket.js';
import type { ClientTelemetry } from './websockets-telemetry.js';

export class InstrumentedWebSocket extends GatewayWebSocket {
  /** Set when the connection opens (see `WebSocketsTelemetry.observe()`). */
  telemetry: ClientTelemetry | undefined;
  /** Exception frames sent so far: a handler during whose run this grows failed (`WebSocketsTelemetry.handle()`). */
  exceptionsSent = 0;

  override send(data: WebSocketData | PreparedMessage, options?: SendOptions): Promise<boolean> {
    if (typeof data === 'string' && data.startsWith(EXCEPTION_FRAME_PREFIX)) this.exceptionsSent++;
    return super.send(data, options);
  }

  protected override sendNow(data: WebSocketData | PreparedMessage, options?: SendOptions): Promise<boolean> {
    this.telemetry?.telemetry.messageSent(this.telemetry.traffic, data);
    return super.sendNow(data, options);
  }
}
