/**
 * The server of `npm run bench:telemetry`: a Nest app with an echo and a fan-out gateway on WebSocketsAdapter, with
 * OpenTelemetry as TELEMETRY says: `off` (the API installed, no provider: what an app without OpenTelemetry runs),
 * `metrics` (the SDK's MeterProvider with a periodic reader, exporting every second to memory), or `traces` (that,
 * plus a TracerProvider whose spans go to an exporter that drops them). Prints `{"port":n}` once listening.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer, type WsResponse } from '@nestjs/websockets';
import { metrics, trace } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import type { AddressInfo } from 'node:net';
import { WebSocketsAdapter } from '../lib/nest/websockets.adapter.js';
import { WebSocketsModule } from '../lib/nest/websockets.module.js';
import type { WebSocketsGatewayServer } from '../lib/nest/gateway-server.js';

@WebSocketGateway({ path: '/ws' })
class BenchGateway {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): WsResponse<unknown> {
    return { event: 'echo', data };
  }

  /** Sends `data` to every client of the server (the sender included). */
  @SubscribeMessage('fanout')
  async fanout(@MessageBody() data: unknown): Promise<void> {
    await this.server.emit('tick', data);
  }
}

@Module({ imports: [WebSocketsModule.forRoot({})], providers: [BenchGateway] })
class BenchModule {}

/** Spans are made and ended, then dropped: the cost measured is the instrumentation's, not an exporter's. */
const dropSpans: SpanExporter = {
  export: (_spans: ReadableSpan[], done) => done({ code: 0 }),
  shutdown: () => Promise.resolve(),
};

async function main(): Promise<void> {
  const mode = process.env.TELEMETRY ?? 'off';
  if (mode === 'metrics' || mode === 'traces') {
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.DELTA),
      exportIntervalMillis: 1000,
    });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  }
  if (mode === 'traces') trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter: dropSpans })] }));
  const app = await NestFactory.create(BenchModule, { logger: ['error'] });
  app.useWebSocketAdapter(new WebSocketsAdapter(app));
  await app.listen(0, '127.0.0.1');
  // An exit rather than death by signal, so that `node --cpu-prof` writes its profile.
  process.once('SIGTERM', () => process.exit(0));
  process.stdout.write(`${JSON.stringify({ port: (app.getHttpServer().address() as AddressInfo).port })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error instanceof Error ? error.stack : error)}\n`);
  process.exitCode = 1;
});
