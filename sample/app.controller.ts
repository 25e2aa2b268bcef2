/**
 * Serves the chat page at `/`, its script at `/chat.js`, and the client SDK's modules under `/sdk/` (see
 * client-modules.ts). No inline script: the page's Content-Security-Policy allows scripts from this origin only.
 */
import { Controller, Get, Header, NotFoundException, Param } from '@nestjs/common';
import { CHAT_PAGE, CHAT_SCRIPT } from './chat-page.js';
import { readClientModule } from './client-modules.js';

const JAVASCRIPT = 'text/javascript; charset=utf-8';

@Controller()
export class AppController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'")
  page(): string {
    return CHAT_PAGE;
  }

  @Get('chat.js')
  @Header('Content-Type', JAVASCRIPT)
  script(): string {
    return CHAT_SCRIPT;
  }

  @Get('sdk/:folder/:file')
  @Header('Content-Type', JAVASCRIPT)
  async sdk(@Param('folder') folder: string, @Param('file') file: string): Promise<string> {
    const text = await readClientModule(`${folder}/${file}`);
    if (text === null) throw new NotFoundException(`no client module ${folder}/${file} (build the sample first: npm start)`);
    return text;
  }
}
