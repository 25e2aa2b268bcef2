/**
 * The package people install: `npm pack` (which runs `prepack`, the lib build) gives a tarball with dist/lib, the
 * types, README and LICENSE and nothing else. The tarball is installed into fresh apps in a temporary directory
 * outside the repository: a Nest app written as ESM (Nest 12's default) and the same app as CommonJS (`require`,
 * which Node >= 20.19 lets load ESM), each compiled with strict TypeScript (no skipLibCheck: our declarations are
 * checked too) and run as a real process serving a gateway; and an app with no Nest package at all, which must load
 * the `node` and `protocol` entries.
 *
 * To stay fast and offline, the tarball is installed with `npm install --offline` (it has no dependencies: the Nest
 * peers are optional) and the apps' Nest packages are symlinks to this repository's node_modules.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { closePeers, connectPeer } from '../nest/ws-peer.js';
import { withTimeout } from '../support/net.js';

const run = promisify(execFile);
const ROOT = process.cwd();
const NPM_TIMEOUT_MS = 60_000;
const TSC_TIMEOUT_MS = 60_000;
const START_TIMEOUT_MS = 20_000;
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
/** What a consumer's app links from this repository's node_modules (the Nest peers, their own peers, Node's types). */
const LINKED = ['@nestjs', 'reflect-metadata', 'rxjs', '@types'];

let work: string;
let tarball: string;
let packed: string[];
const children = new Set<ChildProcess>();

/** A file of the consumer apps, the same for ESM and CommonJS (TypeScript emits `import` or `require`). */
const GATEWAY_TS = `
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import type {
  OnWebSocketsConnection,
  OnWebSocketsDisconnect,
  WebSocketsCloseInfo,
  WebSocketsGatewayOptions,
  WebSocketsGatewayServer,
  WebSocketsHandshakeRequest,
} from 'nestjs-websockets';
import type { WebSocket } from 'nestjs-websockets/node';

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/ws', maxMessageSize: 1024 })
export class EchoGateway implements OnWebSocketsConnection, OnWebSocketsDisconnect {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;

  readonly closes: WebSocketsCloseInfo[] = [];

  handleConnection(client: WebSocket, request: WebSocketsHandshakeRequest): void {
    this.server.join(client, String(request.query.room ?? 'lobby'));
  }

  handleDisconnect(_client: WebSocket, close: WebSocketsCloseInfo): void {
    this.closes.push(close);
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return data;
  }

  @SubscribeMessage('rooms')
  rooms(@ConnectedSocket() client: WebSocket): string[] {
    return [...this.server.roomsOf(client)];
  }
}
`;

const MAIN_TS = `
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { CloseCode, WebSocketsAdapter, WebSocketsModule, WebSocketsService } from 'nestjs-websockets';
import { TestClient } from 'nestjs-websockets/testing';
import { EchoGateway } from './echo.gateway.js';

@Module({
  imports: [WebSocketsModule.forRoot({ maxMessageSize: 65_536, env: {} })],
  providers: [EchoGateway],
})
class AppModule {}

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  app.useWebSocketAdapter(new WebSocketsAdapter(app));
  app.enableShutdownHooks();
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  const limit: number = app.get(WebSocketsService).options.config.limits.maxMessageSize;
  const system = typeof require === 'function' ? 'commonjs' : 'esm';
  // The testing kit, from its own entry, against the app itself.
  const probe = await TestClient.connect(\`ws://127.0.0.1:\${port}/ws\`);
  const kit = await probe.request<string>('echo', 'kit');
  await probe.close();
  process.stdout.write(JSON.stringify({ port, limit, system, kit, goingAway: CloseCode.GOING_AWAY }) + '\\n');
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(String(error instanceof Error ? error.stack : error) + '\\n');
  process.exitCode = 1;
});
`;

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    types: ['node'],
    outDir: 'dist',
    rootDir: 'src',
  },
  include: ['src'],
};

/** An app directory with a package.json, the tarball installed with npm, and (optionally) the Nest peers linked. */
async function makeApp(name: string, type: 'module' | 'commonjs', linkNest: boolean): Promise<string> {
  const dir = path.join(work, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name, private: true, type }, null, 2)}\n`);
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: dir, timeout: NPM_TIMEOUT_MS });
  if (linkNest) {
    // After npm install: npm would prune links it did not create.
    for (const entry of LINKED) symlinkSync(path.join(ROOT, 'node_modules', entry), path.join(dir, 'node_modules', entry), 'dir');
  }
  return dir;
}

/** Writes, compiles (strict) and starts a Nest app; resolves with its ready line. */
async function startNestApp(name: string, type: 'module' | 'commonjs'): Promise<{ child: ChildProcess; ready: Record<string, unknown>; js: string }> {
  const dir = await makeApp(name, type, true);
  mkdirSync(path.join(dir, 'src'));
  writeFileSync(path.join(dir, 'src', 'echo.gateway.ts'), GATEWAY_TS);
  writeFileSync(path.join(dir, 'src', 'main.ts'), MAIN_TS);
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: dir, timeout: TSC_TIMEOUT_MS }).catch((error: { stdout?: string }) => {
    throw new Error(`the ${type} app does not compile:\n${error.stdout ?? String(error)}`);
  });
  const child = spawn(process.execPath, [path.join(dir, 'dist', 'main.js')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ready = await withTimeout(
    new Promise<Record<string, unknown>>((resolve, reject) => {
      child.stdout!.once('data', (line: Buffer) => resolve(JSON.parse(line.toString()) as Record<string, unknown>));
      child.once('exit', (code) => reject(new Error(`the ${type} app exited with ${code}: ${stderr}`)));
    }),
    START_TIMEOUT_MS,
    `the ${type} app to start`,
  );
  return { child, ready, js: readFileSync(path.join(dir, 'dist', 'main.js'), 'utf8') };
}

beforeAll(async () => {
  // Outside the repository, so that nothing resolves from its node_modules by walking up.
  work = mkdtempSync(path.join(os.tmpdir(), 'nestjs-websockets-pack-'));
  // Pack a copy of the checkout (what a fresh clone has, plus a stale build), so that prepack's build never
  // touches the dist/ that other tests and the sample use.
  const stage = path.join(work, 'stage');
  const skipped = new Set(['node_modules', '.git', 'dist', 'coverage'].map((entry) => path.join(ROOT, entry)));
  cpSync(ROOT, stage, { recursive: true, filter: (source) => !skipped.has(source) && !source.endsWith('.tgz') });
  mkdirSync(path.join(stage, 'dist', 'lib'), { recursive: true });
  writeFileSync(path.join(stage, 'dist', 'lib', 'removed-long-ago.js'), 'export {};\n');
  writeFileSync(path.join(stage, 'dist', 'lib', 'index.js.map'), '{}\n');
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(stage, 'node_modules'), 'dir');
  const { stdout } = await run('npm', ['pack', '--json', '--loglevel=error', '--pack-destination', work], {
    cwd: stage,
    timeout: NPM_TIMEOUT_MS,
  });
  // prepack's own output (npm run build) comes before the JSON.
  const [result] = JSON.parse(stdout.slice(stdout.indexOf('\n[') + 1)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = path.join(work, result!.filename);
  packed = result!.files.map((file) => file.path).sort();
  mkdirSync(path.join(work, 'unpacked'));
  await run('tar', ['-xzf', tarball, '-C', path.join(work, 'unpacked')], { timeout: NPM_TIMEOUT_MS });
}, NPM_TIMEOUT_MS + 10_000);

afterAll(async () => {
  await closePeers();
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships dist/lib (JavaScript and declarations), package.json, README and LICENSE, and nothing else', () => {
    const allowed = (file: string): boolean =>
      ['package.json', 'README.md', 'LICENSE'].includes(file) || /^dist\/lib\/[\w/.-]+(?<!\.map)\.(js|d\.ts)$/.test(file);
    expect(packed.filter((file) => !allowed(file))).toEqual([]);
    expect(packed).toContain('LICENSE');
    // README.md is shipped whenever the repository has one (npm always includes it).
    expect(packed.includes('README.md')).toBe(existsSync(path.join(ROOT, 'README.md')));
    expect(packed).not.toContain('dist/lib/removed-long-ago.js');
    for (const entry of ['index', 'node/index', 'protocol/index', 'client/index', 'client/node', 'testing/index']) {
      expect(packed).toContain(`dist/lib/${entry}.js`);
      expect(packed).toContain(`dist/lib/${entry}.d.ts`);
    }
    // Every source file of lib/ is built.
    expect(packed.filter((file) => file.endsWith('.js')).length).toBe(packed.filter((file) => file.endsWith('.d.ts')).length);
  });

  it('declares no `any` in its public types', () => {
    const offenders: string[] = [];
    for (const file of packed.filter((name) => name.endsWith('.d.ts'))) {
      const code = readFileSync(path.join(work, 'unpacked', 'package', file), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      for (const line of code.split('\n')) if (/\bany\b/.test(line)) offenders.push(`${file}: ${line.trim()}`);
    }
    expect(offenders).toEqual([]);
  });

  it('has an exports map whose every target is in the tarball', () => {
    type Target = string | { [condition: string]: Target };
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, Target>;
      types: string;
      main: string;
      files: string[];
    };
    expect(Object.keys(manifest.exports).sort()).toEqual(['.', './broadcast', './client', './node', './package.json', './protocol', './redis', './testing']);
    const flatten = (target: Target): string[] => (typeof target === 'string' ? [target] : Object.values(target).flatMap(flatten));
    const targets = Object.values(manifest.exports).flatMap(flatten);
    for (const target of [...targets, manifest.types, manifest.main]) expect(packed).toContain(target.replace(/^\.\//, ''));
    for (const [key, target] of Object.entries(manifest.exports)) {
      if (typeof target === 'string') continue;
      if (key === './client') {
        // The browser build unless the resolver says node; each branch with its own types, first (TypeScript takes
        // the first condition that matches).
        expect(Object.keys(target)).toEqual(['browser', 'node', 'types', 'default']);
        for (const branch of ['browser', 'node'] as const) expect(Object.keys(target[branch] as object)).toEqual(['types', 'default']);
        continue;
      }
      expect([key, Object.keys(target)]).toEqual([key, ['types', 'default']]);
    }
  });
});

describe('installed in a fresh app outside the repository', () => {
  it('loads the node, protocol, broadcast and redis entries with no Nest package installed, from import and from require', async () => {
    const dir = await makeApp('bare', 'module', false);
    expect(existsSync(path.join(dir, 'node_modules', '@nestjs'))).toBe(false);
    const script = `
      import assert from 'node:assert/strict';
      import { createRequire } from 'node:module';
      import { WebSocketServer, connect } from 'nestjs-websockets/node';
      import { Connection, CloseCode } from 'nestjs-websockets/protocol';
      import { BroadcastServer, InProcessBroadcastBus } from 'nestjs-websockets/broadcast';
      import { RedisBroadcastBus } from 'nestjs-websockets/redis';
      assert.equal(typeof Connection, 'function');
      // The broadcast layer and the Redis bus load without Nest, and without ioredis until the bus connects.
      assert.equal(typeof BroadcastServer, 'function');
      assert.equal(typeof new InProcessBroadcastBus().publish, 'function');
      assert.equal(new RedisBroadcastBus({ url: 'redis://127.0.0.1:1' }).url, 'redis://127.0.0.1:1');
      assert.equal(createRequire(import.meta.url)('nestjs-websockets/node').WebSocketServer, WebSocketServer);
      const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      server.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
      const { port } = await server.listen();
      const client = await connect('ws://127.0.0.1:' + port + '/');
      const echoed = new Promise((resolve) => client.once('message', (data) => resolve(String(data))));
      await client.send('hello');
      assert.equal(await echoed, 'hello');
      await client.close(CloseCode.NORMAL_CLOSURE);
      await server.close();
      // The client SDK in Node: its node build, whose default WebSocket is this package's (Node 20 has none).
      const sdk = await import('nestjs-websockets/client');
      assert.equal(typeof sdk.NodeWebSocket, 'function');
      const echoServer = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      echoServer.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
      const echoPort = (await echoServer.listen()).port;
      const sdkClient = new sdk.WebSocketsClient('ws://127.0.0.1:' + echoPort + '/');
      // An echo server sends the request back as it is: the reply carries the request's id.
      assert.deepEqual(await sdkClient.request('echo', { n: 1 }), { n: 1 });
      await sdkClient.close();
      await echoServer.close();
      await assert.rejects(import('nestjs-websockets'), { code: 'ERR_MODULE_NOT_FOUND', message: /@nestjs\\/common/ });
      process.stdout.write('ok\\n');
    `;
    writeFileSync(path.join(dir, 'check.mjs'), script);
    const { stdout } = await run(process.execPath, ['check.mjs'], { cwd: dir, timeout: START_TIMEOUT_MS });
    expect(stdout).toBe('ok\n');
  }, NPM_TIMEOUT_MS);

  it('gives bundlers the browser build of nestjs-websockets/client, with nothing of node:*, and Node its node build', async () => {
    const dir = await makeApp('bundled', 'module', false);
    writeFileSync(path.join(dir, 'entry.js'), "export { WebSocketsClient } from 'nestjs-websockets/client';\n");
    const { build, stop } = await import('esbuild');
    const inputs = async (platform: 'browser' | 'node'): Promise<string[]> => {
      const result = await build({ entryPoints: [path.join(dir, 'entry.js')], absWorkingDir: dir, bundle: true, write: false, format: 'esm', platform, metafile: true, logLevel: 'silent' });
      return Object.keys(result.metafile.inputs);
    };
    // esbuild keeps a service process for later builds: stop it, so that no child outlives this test.
    const [browser, node] = await Promise.all([inputs('browser'), inputs('node')]).finally(() => stop());
    expect(browser).toContain('node_modules/nestjs-websockets/dist/lib/client/index.js');
    expect(browser.filter((file) => file.startsWith('node:') || file.includes('/lib/node/') || file.endsWith('client/node.js'))).toEqual([]);
    expect(node).toContain('node_modules/nestjs-websockets/dist/lib/client/node.js');
    expect(node).toContain('node_modules/nestjs-websockets/dist/lib/node/client.js');
  }, NPM_TIMEOUT_MS);

  for (const type of ['module', 'commonjs'] as const) {
    it(`serves a gateway from a strictly typed ${type === 'module' ? 'ESM' : 'CommonJS'} Nest app`, async () => {
      const { child, ready, js } = await startNestApp(`app-${type}`, type);
      // TypeScript emitted the module system asked for: CommonJS apps require() the ESM package.
      if (type === 'commonjs') expect(js).toMatch(/require\("nestjs-websockets"\)/);
      else expect(js).toMatch(/from 'nestjs-websockets'/);
      expect(ready).toMatchObject({ limit: 65_536, system: type === 'module' ? 'esm' : 'commonjs', kit: 'kit', goingAway: CloseCode.GOING_AWAY });

      const peer = await connectPeer(`ws://127.0.0.1:${ready.port as number}/ws?room=blue`);
      peer.send({ event: 'echo', data: { text: 'héllo' }, id: 7 });
      expect(await peer.next()).toEqual({ event: 'echo', data: { text: 'héllo' }, id: 7 });
      peer.send({ event: 'rooms' });
      expect(await peer.next()).toEqual({ event: 'rooms', data: ['blue'] });
      // The gateway's own limit (1024) wins over the module's.
      const big = await connectPeer(`ws://127.0.0.1:${ready.port as number}/ws`);
      big.send({ event: 'echo', data: 'x'.repeat(2048) });
      expect((await big.closed).code).toBe(CloseCode.MESSAGE_TOO_BIG);

      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      expect((await peer.closed).code).toBe(CloseCode.GOING_AWAY);
      // enableShutdownHooks closes the app, then re-raises the signal.
      const [code, signal] = (await withTimeout(exited, START_TIMEOUT_MS, `the ${type} app to exit`)) as [number | null, string | null];
      expect(code === 0 || signal === 'SIGTERM').toBe(true);
    }, NPM_TIMEOUT_MS + TSC_TIMEOUT_MS);
  }
});
