/**
 * The code of the docs works as written: the README's samples compile against the package, and so do the files
 * the tutorial (docs/tutorial/chat-app.md) shows, after each of its steps. The tutorial's final app, run as its own
 * process with TLS from WEBSOCKETS_TLS_CERT / _KEY and a CHAT_TOKEN, refuses a wrong token with 401 (no reconnection), lets two members of a room chat through the tutorial's own client module,
 * answers an invalid message with a 400 exception, serves its page (bundled as the tutorial says) on which two
 * Chromium tabs chat and a wrong token is told why, and exits on SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { build, stop } from 'esbuild';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { useChromium, type ChromiumOptions } from './support/browser.js';
import { makeTestCertificates, type TestCertificates } from './support/certs.js';
import { compileForChild, ROOT, type CompiledTree } from './support/compile.js';
import { docSnapshots, packageSourcePaths, typecheckSnapshots, unnamedTsBlocks, type DocSnapshot } from './support/doc-samples.js';
import { freePort, withTimeout } from './support/net.js';
import { describeWithPeer } from './support/peers.js';
import { readDoc } from './support/readme-table.js';

const readme = readDoc('README.md');
const snapshots = docSnapshots(readDoc('docs/tutorial/chat-app.md'));
const final = snapshots.at(-1) as DocSnapshot;

describe("the README's samples", () => {
  it('names the file of every TypeScript sample, so that each one is compiled', () => {
    expect(unnamedTsBlocks(readme)).toEqual([]);
  });

  it('has code samples that compile against the package', async () => {
    const samples = docSnapshots(readme);
    expect([...(samples.at(-1)?.files.keys() ?? [])].sort()).toEqual(['app.module.ts', 'chat.gateway.ts', 'chat.ts', 'main.ts', 'server.ts']);
    expect(await typecheckSnapshots('readme-samples-', samples)).toEqual([]);
  }, 240_000);
});

describe('the tutorial compiles', () => {
  it('shows the whole app, step by step', () => {
    expect(snapshots.length).toBeGreaterThanOrEqual(3);
    expect([...final.files.keys()].sort()).toEqual([
      'client/chat-client.ts',
      'client/page.ts',
      'src/app.module.ts',
      'src/chat.gateway.ts',
      'src/main.ts',
      'src/token.guard.ts',
    ]);
  });

  it('compiles after every step', async () => {
    expect(await typecheckSnapshots('tutorial-steps-', snapshots)).toEqual([]);
  }, 240_000);
});

/** Writes the final app's Node files with `nestjs-websockets` imports pointed at this repository's sources. */
function writeRunnableSources(dir: string): string[] {
  const entryPoints = packageSourcePaths('node');
  const written: string[] = [];
  for (const [name, source] of final.files) {
    if (name === 'client/page.ts') continue; // browser code: compiled above, run by a browser
    const file = path.join(dir, name);
    const rewritten = source.replace(/from '(nestjs-websockets(?:\/[\w-]+)?)'/g, (whole, specifier: string) => {
      const target = entryPoints[specifier];
      if (target === undefined) throw new Error(`the tutorial imports ${specifier}, which package.json does not export`);
      const relative = path.relative(path.dirname(file), target).replace(/\.ts$/, '.js');
      return `from '${relative.startsWith('.') ? relative : `./${relative}`}'`;
    });
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, rewritten);
    written.push(path.relative(ROOT, file));
  }
  return written;
}

/**
 * The tutorial's page as its step 2 builds it: public/index.html from the page, and public/chat.js bundled by esbuild
 * from client/page.ts, with `nestjs-websockets/client` resolved to the SDK's browser build.
 */
async function writePublicDir(sourceDir: string, appDir: string): Promise<void> {
  const html = /^```html\n<!-- public\/index\.html -->\n([\s\S]*?)^```/m.exec(readDoc('docs/tutorial/chat-app.md'))?.[1];
  if (html === undefined) throw new Error('the tutorial shows no public/index.html');
  mkdirSync(path.join(appDir, 'public'), { recursive: true });
  writeFileSync(path.join(appDir, 'public', 'index.html'), html);
  const browserDir = path.join(sourceDir, 'browser');
  for (const name of ['client/chat-client.ts', 'client/page.ts']) {
    mkdirSync(path.dirname(path.join(browserDir, name)), { recursive: true });
    writeFileSync(path.join(browserDir, name), final.files.get(name) ?? '');
  }
  try {
    await build({
      entryPoints: [path.join(browserDir, 'client', 'page.ts')],
      outfile: path.join(appDir, 'public', 'chat.js'),
      alias: { 'nestjs-websockets/client': packageSourcePaths()['nestjs-websockets/client'] ?? '' },
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      logLevel: 'silent',
    });
  } finally {
    // esbuild keeps a service process for later builds: stop it, so that no child outlives the test.
    await stop();
  }
}

/** Runs in its own process: the tutorial's client module against the running app, printing what happened as JSON. */
const DRIVER = `
import { readFileSync } from 'node:fs';
import { openChat } from './client/chat-client.js';
import { NodeWebSocket } from 'NODE_CLIENT';

const [url, token, caFile] = process.argv.slice(2);
const WebSocket = NodeWebSocket.with({ ca: readFileSync(caFile) });
const next = (client, event) => new Promise((resolve) => { const off = client.on(event, (data) => { off(); resolve(data); }); });
const result = {};

const intruder = openChat(url, 'lobby', { WebSocket, auth: 'wrong' });
intruder.on('error', () => undefined);
const refused = await next(intruder, 'close');
result.refused = { code: refused.code, willReconnect: refused.willReconnect, status: refused.error?.status, message: refused.error?.message };
await intruder.close();

const alice = openChat(url, 'lobby', { WebSocket, auth: token });
const bob = openChat(url, 'lobby', { WebSocket, auth: token });
await Promise.all([next(alice, 'joined'), next(bob, 'joined')]);
const heard = next(bob, 'chat');
alice.emit('chat', { room: 'lobby', text: 'hello from the tutorial' });
result.heard = await heard;
try {
  await alice.request('join', { room: '' });
  result.invalid = 'accepted';
} catch (error) {
  result.invalid = { name: error.name, statusCode: error.statusCode };
}
await Promise.all([alice.close(), bob.close()]);
process.stdout.write(JSON.stringify(result));
`;

describeWithPeer('openssl', 'the tutorial app runs', () => {
  let certs: TestCertificates;
  let sourceDir: string;
  let tree: CompiledTree;
  let app: ChildProcess | undefined;
  let port: number;
  const TOKEN = 'tutorial-token-0123456789';
  const chromiumOptions: ChromiumOptions = {};

  beforeAll(async () => {
    certs = await makeTestCertificates();
    // Under dist/ (git-ignored), not node_modules/: tsc does not emit the package's sources for files below node_modules.
    mkdirSync(path.join(ROOT, 'dist'), { recursive: true });
    sourceDir = mkdtempSync(path.join(ROOT, 'dist', 'tutorial-src-'));
    tree = await compileForChild('tutorial-app-', writeRunnableSources(sourceDir), { timeoutMs: 180_000 });
    const compiledDir = path.join(tree.dir, path.relative(ROOT, sourceDir));
    const nodeClient = path.relative(compiledDir, tree.entry(path.relative(ROOT, packageSourcePaths('node')['nestjs-websockets/client'] ?? '')));
    writeFileSync(path.join(compiledDir, 'drive.js'), DRIVER.replace('NODE_CLIENT', nodeClient));
    await writePublicDir(sourceDir, compiledDir);
    chromiumOptions.trustSpki = [certs.server.spkiSha256];

    port = await freePort();
    app = spawn(process.execPath, [path.join(compiledDir, 'src', 'main.js')], {
      cwd: compiledDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        NO_COLOR: '1',
        PORT: String(port),
        CHAT_TOKEN: TOKEN,
        WEBSOCKETS_TLS_CERT: certs.server.certFile,
        WEBSOCKETS_TLS_KEY: certs.server.keyFile,
      },
    });
    let output = '';
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('listening on')) resolve();
      };
      app!.stdout!.on('data', onData);
      app!.stderr!.on('data', onData);
      app!.once('exit', (code) => reject(new Error(`the tutorial app exited with ${code}: ${output}`)));
    });
    await withTimeout(ready, 30_000, 'the tutorial app to listen');
  }, 240_000);

  afterAll(async () => {
    if (app !== undefined && app.exitCode === null && app.signalCode === null) {
      const exited = once(app, 'exit');
      app.kill('SIGKILL');
      await exited;
    }
    tree?.remove();
    if (sourceDir !== undefined) rmSync(sourceDir, { recursive: true, force: true });
  });

  it('refuses a wrong token, lets members chat and validates messages, with the client module in Node', async () => {
    const driver = path.join(tree.dir, path.relative(ROOT, sourceDir), 'drive.js');
    const { stdout } = await promisify(execFile)(process.execPath, [driver, `wss://localhost:${port}/ws`, TOKEN, certs.ca.certFile], {
      cwd: path.dirname(driver),
      timeout: 30_000,
    });
    expect(JSON.parse(stdout)).toEqual({
      refused: { code: 4401, willReconnect: false, status: 401, message: 'missing or wrong token' },
      heard: { room: 'lobby', text: 'hello from the tutorial' },
      invalid: { name: 'ServerExceptionError', statusCode: 400 },
    });
  }, 60_000);

  describeWithPeer('chromium', 'the page in headless Chromium', () => {
    const browser = useChromium(chromiumOptions);

    it('chats between two pages over wss, and tells a page with a wrong token why it was refused', async () => {
      const WAIT_MS = 15_000;
      const context = await browser().newContext();
      try {
        const open = async (token: string) => {
          const page = await context.newPage();
          await page.addInitScript(`sessionStorage.setItem('chat-token', ${JSON.stringify(token)})`); // what the prompt would store
          await page.goto(`https://localhost:${port}/?room=garden`);
          return page;
        };
        const first = await open(TOKEN);
        const second = await open(TOKEN);
        for (const page of [first, second]) await page.locator('#status', { hasText: 'in garden' }).waitFor({ timeout: WAIT_MS });
        await first.fill('#send input', 'hello from Chromium');
        await first.click('#send button');
        await second.locator('#log li', { hasText: 'hello from Chromium' }).waitFor({ timeout: WAIT_MS });
        await first.locator('#log li', { hasText: 'hello from Chromium' }).waitFor({ timeout: WAIT_MS });

        const intruder = await open('wrong');
        await intruder.locator('#status', { hasText: 'missing or wrong token' }).waitFor({ timeout: WAIT_MS });
      } finally {
        await context.close();
      }
    }, 60_000);
  });

  it('stops on SIGTERM', async () => {
    const exited = once(app!, 'exit');
    app!.kill('SIGTERM');
    const [code, signal] = (await withTimeout(exited, 20_000, 'the tutorial app to exit on SIGTERM')) as [number | null, string | null];
    // Nest's shutdown hooks close the app, then raise the signal again: the process ends by SIGTERM, not an error.
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
  }, 60_000);
});
