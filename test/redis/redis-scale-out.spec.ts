/**
 * Scale-out over a real redis-server: Nest app instances in separate Node processes (compiled with tsc, as the
 * throttler test does: Jest's module system is not Node's), clients on each, rooms shared through
 * WEBSOCKETS_REDIS_URL. Checks delivery exactly once per member whichever instance holds it, the sender excluded on
 * request, binary payloads byte for byte, Redis stopped and started again mid-test (local delivery goes on while it
 * is down; cross-instance delivery resumes), start-up without Redis or without ioredis (a clear error, and the
 * process exits by itself), and the sample app itself on two ports.
 *
 * Exactly once is checked without sleeping: senders alternate between instances, so a duplicate (an instance
 * delivering its own message again when Redis echoes it) would arrive before the next expected message.
 */
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { closePeers, connectPeer, type Peer } from '../nest/ws-peer.js';
import { ROOT, compileForChild } from '../support/compile.js';
import { freePort, WAIT_MS as ONE_WAIT, withTimeout } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const BUILD_TIMEOUT_MS = 90_000;
const START_MS = 20_000;
const WAIT_MS = 3 * ONE_WAIT;

/** A compiled tree outside the repository, with its own node_modules (symlinks), so that a package can be left out. */
let buildDir: string;
/** The same compiled files, with every package but ioredis. */
let noRedisDir: string;
let redis: RedisServer;
const apps = new Set<App>();

/** One app process: its port, and every line it printed. */
interface App {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
  readonly lines: string[];
  readonly exited: Promise<number | null>;
  /** Resolves once a printed line matches. */
  waitForLine(pattern: RegExp, what: string): Promise<string>;
}

function linkNodeModules(dir: string, leaveOut: readonly string[]): void {
  const target = path.join(dir, 'node_modules');
  mkdirSync(target);
  for (const name of readdirSync(path.join(ROOT, 'node_modules'))) {
    if (name.startsWith('.') || leaveOut.includes(name)) continue;
    symlinkSync(path.join(ROOT, 'node_modules', name), path.join(target, name));
  }
}

/** Starts `entry` (a compiled file below `dir`) and waits for `ready(line)` to give its port, or for it to exit. */
async function launch(
  name: string,
  dir: string,
  entry: string,
  env: Record<string, string>,
  ready: (line: string) => number | undefined,
): Promise<App> {
  const child = spawn(process.execPath, [path.join(dir, entry)], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', NODE_NO_WARNINGS: '1', CI: '', ...env },
  });
  const lines: string[] = [];
  const watchers = new Set<() => void>();
  let rest = '';
  const take = (chunk: Buffer) => {
    rest += chunk.toString();
    const parts = rest.split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
    for (const watcher of [...watchers]) watcher();
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const waitForLine = (pattern: RegExp, what: string): Promise<string> =>
    withTimeout(
      new Promise<string>((resolve) => {
        const check = () => {
          const line = lines.find((l) => pattern.test(l));
          if (line === undefined) return;
          watchers.delete(check);
          resolve(line);
        };
        watchers.add(check);
        check();
      }),
      WAIT_MS,
      `${name}: ${what}`,
    );
  const port = await withTimeout(
    new Promise<number>((resolve, reject) => {
      const check = () => {
        for (const line of lines) {
          const found = ready(line);
          if (found !== undefined) {
            watchers.delete(check);
            resolve(found);
          }
        }
      };
      watchers.add(check);
      void exited.then((code) => reject(new Error(`${name} exited with ${code} before it was ready:\n${lines.join('\n')}`)));
    }),
    START_MS,
    `${name} to start`,
  );
  const app = { name, child, port, lines, exited, waitForLine };
  apps.add(app);
  return app;
}

/** The rooms fixture: ready when it prints `{"ready":true,"port":N}`. */
function launchRooms(name: string, env: Record<string, string> = {}, dir = buildDir): Promise<App> {
  return launch(name, dir, 'test/redis/fixtures/rooms-app.js', { INSTANCE_NAME: name, WEBSOCKETS_REDIS_URL: redis.url, ...env }, readyPort);
}

function readyPort(line: string): number | undefined {
  if (!line.startsWith('{')) return undefined;
  const parsed = JSON.parse(line) as { ready?: boolean; port?: number };
  return parsed.ready === true ? parsed.port : undefined;
}

async function stopApp(app: App): Promise<void> {
  apps.delete(app);
  if (app.child.exitCode !== null || app.child.signalCode !== null) return;
  app.child.kill('SIGTERM');
  const timer = setTimeout(() => app.child.kill('SIGKILL'), 10_000);
  await app.exited;
  clearTimeout(timer);
}

async function client(app: App): Promise<Peer> {
  return connectPeer(`ws://127.0.0.1:${app.port}/ws`);
}

async function join(peer: Peer, room: string): Promise<void> {
  peer.send({ event: 'join', data: { room } });
  expect(await peer.next()).toMatchObject({ event: 'joined', data: { room } });
}

/** The text of the next message, which must be a chat (or `all`) message. */
async function nextText(peer: Peer): Promise<string> {
  const message = (await peer.next()) as { event: string; data: { text: string } };
  expect(['chat', 'all']).toContain(message.event);
  return message.data.text;
}

/** Sends chat `text` from `sender` and checks that each member's next message is exactly it. */
async function chat(sender: Peer, room: string, text: string, members: readonly Peer[]): Promise<void> {
  sender.send({ event: 'chat', data: { room, text } });
  for (const member of members) expect(await nextText(member)).toBe(text);
}

beforeAll(async () => {
  const compiled = await compileForChild(
    'nestjs-websockets-scale-out-',
    ['test/redis/fixtures/rooms-app.ts', 'test/redis/fixtures/cluster-app.ts', 'sample/main.ts'],
    { parent: os.tmpdir(), timeoutMs: BUILD_TIMEOUT_MS },
  );
  buildDir = compiled.dir;
  noRedisDir = mkdtempSync(path.join(os.tmpdir(), 'nestjs-websockets-no-redis-'));
  cpSync(buildDir, noRedisDir, { recursive: true });
  linkNodeModules(buildDir, []);
  linkNodeModules(noRedisDir, ['ioredis']);
}, BUILD_TIMEOUT_MS + 10_000);

afterAll(async () => {
  for (const dir of [buildDir, noRedisDir]) if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describeWithPeer('redis', 'rooms across Nest instances in separate processes, over a real redis-server', () => {
  beforeAll(async () => {
    redis = await startRedis();
  });

  afterEach(async () => {
    await closePeers();
    await Promise.all([...apps].map(stopApp));
    if (!redis.running) await redis.start();
  });

  afterAll(async () => {
    await redis?.close();
  });

  it('delivers a chat message to every member once, whichever instance holds it; rooms are local, messages cross', async () => {
    const [a, b] = await Promise.all([launchRooms('a'), launchRooms('b')]);
    for (const app of [a, b]) {
      expect(await app.waitForLine(/broadcasts cross instances through Redis/, 'the bus to connect')).toContain(
        `[RedisBroadcastBus] broadcasts cross instances through Redis at ${redis.url} (instance `,
      );
    }
    const [a1, a2, b1, b2] = await Promise.all([client(a), client(a), client(b), client(b)]);
    await Promise.all([join(a1, 'lobby'), join(a2, 'lobby'), join(b1, 'lobby'), join(b2, 'kitchen')]);
    const lobby = [a1, a2, b1];

    // Senders alternate between instances: a duplicate would come before the next expected message.
    await chat(a1, 'lobby', 'one from a', lobby);
    await chat(b1, 'lobby', 'two from b', lobby);
    await chat(a2, 'lobby', 'three from a', lobby);
    // b2 is in another room on instance b: its next message is its own room's, not the lobby's.
    await chat(b2, 'kitchen', 'kitchen only', [b2]);
    // A room on one instance only still publishes (the other has no members: nothing to deliver there).
    await chat(b1, 'lobby', 'four from b', lobby);
    expect([a1, a2, b1, b2].map((peer) => peer.pending())).toEqual([0, 0, 0, 0]);
  });

  it('excludes the sender on request, sends binary payloads byte for byte, and broadcasts to every client', async () => {
    const [a, b] = await Promise.all([launchRooms('a'), launchRooms('b')]);
    const [a1, a2, b1, b2] = await Promise.all([client(a), client(a), client(b), client(b)]);
    await Promise.all([join(a1, 'lobby'), join(a2, 'lobby'), join(b1, 'lobby')]);

    a1.send({ event: 'chat-others', data: { room: 'lobby', text: 'not to myself' } });
    expect(await nextText(a2)).toBe('not to myself');
    expect(await nextText(b1)).toBe('not to myself');
    await chat(b1, 'lobby', 'after', [a1, a2, b1]);

    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
    b1.send({ event: 'binary', data: { room: 'lobby', hex: bytes.toString('hex') } });
    for (const member of [a1, a2, b1]) {
      const message = await member.nextRaw();
      expect(message.isBinary).toBe(true);
      expect(message.data).toEqual(bytes);
    }

    a2.send({ event: 'all', data: { text: 'everyone' } });
    for (const peer of [a1, a2, b1, b2]) expect(await peer.next()).toEqual({ event: 'all', data: { text: 'everyone', via: 'a' } });
    await chat(b1, 'lobby', 'end', [a1, a2, b1]);
    expect([a1, a2, b1, b2].map((peer) => peer.pending())).toEqual([0, 0, 0, 0]);
  });

  it('keeps local delivery while Redis is stopped, logs the loss, and resumes across instances when it is back', async () => {
    const [a, b] = await Promise.all([launchRooms('a'), launchRooms('b')]);
    const [a1, a2, b1] = await Promise.all([client(a), client(a), client(b)]);
    await Promise.all([join(a1, 'lobby'), join(a2, 'lobby'), join(b1, 'lobby')]);
    await chat(a1, 'lobby', 'before', [a1, a2, b1]);

    await redis.stop();
    for (const app of [a, b]) {
      expect(await app.waitForLine(/lost the connection to Redis/, 'the loss to be logged')).toMatch(
        new RegExp(
          `ERROR \\[RedisBroadcastBus\\] lost the connection to Redis at redis://127\\.0\\.0\\.1:${redis.port} \\(.+\\); ` +
            `broadcasts reach this instance's clients only until it is back; reconnecting with backoff \\(100 ms to 5000 ms\\)`,
        ),
      );
    }
    // Local delivery goes on; the handler's promise resolves (no exception frame comes back to the sender).
    await chat(a1, 'lobby', 'while down', [a1, a2]);
    await chat(b1, 'lobby', 'b alone', [b1]);
    expect(a.child.exitCode).toBeNull();
    expect(b.child.exitCode).toBeNull();

    await redis.start();
    for (const app of [a, b]) {
      expect(await app.waitForLine(/reconnected to Redis/, 'the reconnection to be logged')).toMatch(
        /LOG \[RedisBroadcastBus\] reconnected to Redis at redis:\/\/127\.0\.0\.1:\d+ after \d+ ms; \d+ broadcast\(s\) reached this instance's clients only meanwhile/,
      );
    }
    // Instance b subscribes again on 'ready', which may land just after a's next publish: retry until b1 hears one.
    let attempt = 0;
    for (;;) {
      const text = `after ${attempt++}`;
      await chat(a1, 'lobby', text, [a1, a2]);
      const heard = await withTimeout(b1.next(), 300, 'b1').catch(() => undefined);
      if (heard !== undefined) {
        // Nothing sent while Redis was down reaches b1 afterwards: its first message is one sent after.
        expect(heard).toEqual({ event: 'chat', data: { room: 'lobby', text, via: 'a' } });
        break;
      }
      if (attempt > 50) throw new Error('cross-instance delivery did not resume');
    }
    await chat(b1, 'lobby', 'resumed from b', [a1, a2, b1]);
    await chat(a2, 'lobby', 'resumed from a', [a1, a2, b1]);
    expect(a.lines.filter((line) => /lost the connection to Redis/.test(line))).toHaveLength(1);
  }, 60_000);

  it('refuses to start when Redis is unreachable: a clear error, and the process exits by itself', async () => {
    const port = await freePort();
    const child = launch('no-redis', buildDir, 'test/redis/fixtures/rooms-app.js', { WEBSOCKETS_REDIS_URL: `redis://127.0.0.1:${port}` }, () => undefined);
    const error = await child.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain(
      `{"ready":false,"name":"RedisUnavailableError","code":"WS_ERR_REDIS_UNAVAILABLE","message":"cannot connect to Redis at ` +
        `redis://127.0.0.1:${port} (option redisUrl, env WEBSOCKETS_REDIS_URL): connect ECONNREFUSED 127.0.0.1:${port}; ` +
        `start Redis, fix the URL, or unset it to keep broadcasts in this process"}`,
    );
    expect(error?.message).toMatch(/^no-redis exited with 1 before it was ready/);
  });

  it('names the package to install when WEBSOCKETS_REDIS_URL is set and ioredis is not installed', async () => {
    const error = await launchRooms('no-ioredis', {}, noRedisDir).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain(
      '{"ready":false,"name":"RedisClientMissingError","code":"WS_ERR_REDIS_CLIENT_MISSING","message":"a Redis URL is configured ' +
        '(option redisUrl, env WEBSOCKETS_REDIS_URL) but the ioredis package is not installed; install it with: npm install ioredis"}',
    );
  });

  it('runs without ioredis when no Redis URL is set (in-process rooms)', async () => {
    const app = await launchRooms('in-process', { WEBSOCKETS_REDIS_URL: '' }, noRedisDir);
    const [one, two] = await Promise.all([client(app), client(app)]);
    await Promise.all([join(one, 'lobby'), join(two, 'lobby')]);
    await chat(one, 'lobby', 'local', [one, two]);
    expect(app.lines.some((line) => line.includes('RedisBroadcastBus'))).toBe(false);
  });

  it('Node cluster: workers share one port and their rooms', async () => {
    const port = await freePort();
    const primary = await launch('cluster', buildDir, 'test/redis/fixtures/cluster-app.js', { PORT: String(port), WEBSOCKETS_REDIS_URL: redis.url }, readyPort);
    const workers = () => new Set(primary.lines.filter((line) => line.startsWith('{"ready":true')).map((line) => (JSON.parse(line) as { pid: number }).pid));
    for (let i = 0; workers().size < 2; i++) {
      if (i > 200) throw new Error('the second worker did not start');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The primary hands connections to the workers in turn: connect until both hold a member.
    const members = new Map<string, Peer>();
    for (let i = 0; members.size < 2 && i < 10; i++) {
      const peer = await connectPeer(`ws://127.0.0.1:${port}/ws`);
      peer.send({ event: 'join', data: { room: 'lobby' } });
      const reply = (await peer.next()) as { data: { instance: string } };
      if (!members.has(reply.data.instance)) members.set(reply.data.instance, peer);
    }
    expect(members.size).toBe(2);
    const [first, second] = [...members.values()];
    await chat(first!, 'lobby', 'across workers', [first!, second!]);
    await chat(second!, 'lobby', 'and back', [first!, second!]);
  });

  it('the sample app: two instances on two ports share chat rooms', async () => {
    const launchSample = async (name: string) => {
      const port = await freePort();
      return launch(name, buildDir, 'sample/main.js', { PORT: String(port), WEBSOCKETS_REDIS_URL: redis.url, SAMPLE_TOKEN: '' }, (line) =>
        line.includes('chat page at') ? port : undefined,
      );
    };
    const [first, second] = await Promise.all([launchSample('sample-1'), launchSample('sample-2')]);
    expect(first.port).not.toBe(second.port);
    const [alice, bob, carol] = await Promise.all([client(first), client(second), client(second)]);
    await Promise.all([join(alice, 'lobby'), join(bob, 'lobby'), join(carol, 'elsewhere')]);
    alice.send({ event: 'chat', data: { room: 'lobby', text: 'hello from port ' + first.port } });
    expect(await bob.next()).toEqual({ event: 'chat', data: { room: 'lobby', text: 'hello from port ' + first.port } });
    expect(await alice.next()).toEqual({ event: 'chat', data: { room: 'lobby', text: 'hello from port ' + first.port } });
    bob.send({ event: 'chat', data: { room: 'lobby', text: 'hi back' } });
    for (const peer of [alice, bob]) expect(await peer.next()).toEqual({ event: 'chat', data: { room: 'lobby', text: 'hi back' } });
    carol.send({ event: 'chat', data: { room: 'elsewhere', text: 'alone' } });
    expect(await carol.next()).toEqual({ event: 'chat', data: { room: 'elsewhere', text: 'alone' } });
    expect([alice, bob, carol].map((peer) => peer.pending())).toEqual([0, 0, 0]);
  });
});
