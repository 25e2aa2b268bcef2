/**
 * `WebSocketsExceptionFilter`: Nest's `BaseWsExceptionFilter`, plus `HttpException`s (what `ValidationPipe`,
 * `@nestjs/throttler` and most guards throw) sent with their status and message, and the package's limits
 * (`RoomLimitError`) with their code and message, instead of Nest's "Internal server error". Apply it to gateways:
 * `@UseFilters(new WebSocketsExceptionFilter())`.
 */
import { Catch, HttpException, type ArgumentsHost } from '@nestjs/common';
import { BaseWsExceptionFilter, WsException } from '@nestjs/websockets';
import { RoomLimitError } from '../errors.js';

/**
 * Sends `{ "event": "exception", "data": { "status": "error", "statusCode": 400, "message": [...], "error": "Bad
 * Request" } }` for an `HttpException` (a `ValidationPipe` failure, say), `{ "status": "error", "code":
 * "WS_ERR_ROOM_LIMIT", "message": ... }` for a `RoomLimitError`; everything else as `BaseWsExceptionFilter` does.
 * With this adapter, the frame carries the message's `id` when it had one.
 */
@Catch()
export class WebSocketsExceptionFilter extends BaseWsExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost): void {
    if (exception instanceof RoomLimitError) {
      // A limit of the package, meant for the client: without this, Nest sends "Internal server error" and logs it.
      super.catch(new WsException({ status: 'error', code: exception.code, message: exception.message }), host);
      return;
    }
    if (exception instanceof HttpException) {
      const response = exception.getResponse();
      const payload =
        typeof response === 'string'
          ? { status: 'error', statusCode: exception.getStatus(), message: response }
          : { status: 'error', statusCode: exception.getStatus(), ...response };
      super.catch(new WsException(payload), host);
      return;
    }
    super.catch(exception, host);
  }
}
