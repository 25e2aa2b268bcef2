/**
 * Authentication at the handshake: when SAMPLE_TOKEN is set, a connection without `?token=<that value>` is refused
 * with 401 before the upgrade. A handshake guard is Nest's own `CanActivate`, with dependency injection.
 */
import { Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { timingSafeEqual } from 'node:crypto';
import type { WebSocketsHandshakeRequest } from '../lib/nest/index.js';

@Injectable()
export class SampleTokenGuard implements CanActivate {
  constructor(private readonly config: ConfigService) {}

  canActivate(context: ExecutionContext): boolean {
    const expected = this.config.get<string>('SAMPLE_TOKEN');
    if (expected === undefined || expected === '') return true;
    const token = context.switchToHttp().getRequest<WebSocketsHandshakeRequest>().query.token;
    // Compare in constant time, so that the answer's timing does not leak how much of the token matched.
    const given = Buffer.from(typeof token === 'string' ? token : '');
    const wanted = Buffer.from(expected);
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
      throw new UnauthorizedException('missing or wrong token');
    }
    return true;
  }
}
