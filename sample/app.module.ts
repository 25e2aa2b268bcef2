/**
 * The sample app: @nestjs/config loads .env, WebSocketsModule takes its options from the `websockets` namespace
 * (forRootAsync), the chat gateway serves /ws and the controller the page at /.
 */
import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { WebSocketsModule } from '../lib/nest/index.js';
import { AppController } from './app.controller.js';
import { ChatGateway } from './chat.gateway.js';
import { SampleTokenGuard } from './sample-token.guard.js';
import { websocketsConfig } from './websockets.config.js';

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, load: [websocketsConfig] }),
    WebSocketsModule.forRootAsync(websocketsConfig.asProvider()),
  ],
  controllers: [AppController],
  providers: [ChatGateway, SampleTokenGuard],
})
export class AppModule {}
