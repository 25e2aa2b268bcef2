/**
 * The HTTP platform of the sample: Express (Nest's default), or Fastify with SAMPLE_PLATFORM=fastify. Gateways run
 * the same on both: this package's adapter attaches to the Node HTTP(S) server underneath either.
 */
import type { INestApplication, NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { HttpsOptions } from '../lib/nest/index.js';

export type SamplePlatform = 'express' | 'fastify';

/** SAMPLE_PLATFORM: `express` (the default) or `fastify`. */
export function samplePlatform(env: NodeJS.ProcessEnv = process.env): SamplePlatform {
  const raw = env.SAMPLE_PLATFORM;
  if (raw === undefined || raw === '' || raw === 'express') return 'express';
  if (raw === 'fastify') return 'fastify';
  throw new Error(`SAMPLE_PLATFORM must be "express" or "fastify"; got ${JSON.stringify(raw)}`);
}

/** The HTTP adapter of `platform` (`undefined`: Express, Nest's default), with `httpsOptions` for TLS. */
export function httpAdapterFor(platform: SamplePlatform, httpsOptions: HttpsOptions | undefined): FastifyAdapter | undefined {
  if (platform === 'express') return undefined;
  return new FastifyAdapter(httpsOptions === undefined ? {} : { https: httpsOptions });
}

/** Creates the app of `module` on `platform`. */
export async function createSampleApp(module: object, platform: SamplePlatform, httpsOptions: HttpsOptions | undefined): Promise<INestApplication> {
  const adapter = httpAdapterFor(platform, httpsOptions);
  if (adapter === undefined) {
    const options: NestApplicationOptions = httpsOptions === undefined ? {} : { httpsOptions };
    return NestFactory.create(module, options);
  }
  return NestFactory.create<NestFastifyApplication>(module, adapter);
}
