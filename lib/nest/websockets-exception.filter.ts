/**
 * `WebSocketsExceptionFilter`: Nest's `BaseWsExceptionFilter`, plus `HttpException`s (what `ValidationPipe`,
 * `@nestjs/throttler` and most guards throw) sent with their status and message instead of Nest's
 * "Internal server error". Apply it to gateways: `@UseFilters(new WebSocketsExceptionFilter())`.
 */
import { Catch, HttpException, type ArgumentsHost } from '@nestjs/common';
import { BaseWsExceptionFilter, WsException } from '@nestjs/websockets';

/**
 * Sends `{ "event": "exception", "data": { "status": "error", "statusCode": 400, "message": [...], "error": "Bad
 * Request" } }` for an `HttpException` (a `ValidationPipe` failure, say); everything else as `BaseWsExceptionFilter`
 * does. With this adapter, the frame carries the message's `id` when it had one.
 */
@Catch()
export class WebSocketsExceptionFilter extends BaseWsExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost): void {
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
