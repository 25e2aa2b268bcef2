/** Serves the chat page at `/`. */
import { Controller, Get, Header } from '@nestjs/common';
import { CHAT_PAGE } from './chat-page.js';

@Controller()
export class AppController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
  page(): string {
    return CHAT_PAGE;
  }
}
