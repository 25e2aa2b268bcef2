/**
 * Authentication at the handshake: when SAMPLE_TOKEN is set, a connection without that token is refused with 401
 * before the upgrade (in-band, as a close with 4401, for a browser: see the `refusals` option). The token is read
 * from `Authorization: Bearer <token>`, which is where the client SDK's `auth` option puts it (browsers cannot set
 * headers: the SDK carries it in Sec-WebSocket-Protocol and the server exposes it here), else from `?token=`, for
 * clients that can do neither. A handshake guard is Nest's own `CanActivate`, with dependency injection.
 */
import { Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { timingSafeEqual } from 'node:crypto';
import type { WebSocketsHandshakeRequest } from '../lib/nest/index.js';

const BEARER = /^Bearer (.+)$/;

@Injectable()
export class SampleTokenGuard implements CanActivate {
  constructor(private readonly config: ConfigService) {}

  canActivate(context: ExecutionContext): boolean {
    const expected = this.config.get<string>('SAMPLE_TOKEN');
    if (expected === undefined || expected === '') return true;
    const request = context.switchToHttp().getRequest<WebSocketsHandshakeRequest>();
    const bearer = BEARER.exec(request.headers.authorization ?? '')?.[1];
    const token = bearer ?? request.query.token;
    // Compare in constant time, so that the answer's timing does not leak how much of the token matched.
    const given = Buffer.from(typeof token === 'string' ? token : '');
    const wanted = Buffer.from(expected);
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
      throw new UnauthorizedException('missing or wrong token');
    }
    return true;
  }
}
