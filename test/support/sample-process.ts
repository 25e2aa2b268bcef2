/**
 * The sample app as a real process, compiled the way `npm start` builds it (with the client SDK's browser modules
 * next to it, which its page loads from /sdk/), started on a given port and stopped with SIGTERM: for tests that stop
 * the server and start it again on the same port, and for Chromium, whose page needs the compiled SDK.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { compileForChild, type CompiledTree } from './compile.js';
import { withTimeout } from './net.js';

/** Compiling the sample (Nest included) takes a while on two shared cores. */
export const SAMPLE_BUILD_TIMEOUT_MS = 120_000;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;

/** A compiled sample that can be started and stopped, more than once, on a port. */
export class SampleApp {
  readonly #tree: CompiledTree;
  readonly #children = new Set<ChildProcess>();

  private constructor(tree: CompiledTree) {
    this.#tree = tree;
  }

  /** Compiles sample/main.ts and lib/client/index.ts into a fresh directory under node_modules/.cache. */
  static async build(): Promise<SampleApp> {
    return new SampleApp(await compileForChild('sample-app-', ['sample/main.ts', 'lib/client/index.ts'], { timeoutMs: SAMPLE_BUILD_TIMEOUT_MS }));
  }

  /**
   * Starts the sample on `port` (127.0.0.1 reaches it) with `env` added to a minimal environment, and resolves once
   * it logs that it listens.
   * @throws Error when it exits first, or is not ready within 30 s
   */
  async start(port: number, env: Record<string, string> = {}): Promise<ChildProcess> {
    const child = spawn(process.execPath, [this.#tree.entry('sample/main.ts')], {
      cwd: this.#tree.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', NODE_NO_WARNINGS: '1', PORT: String(port), ...env },
    });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    let output = '';
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('chat page at ')) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`the sample exited with ${code}: ${output}`)));
    });
    await withTimeout(ready, READY_TIMEOUT_MS, `the sample to listen on port ${port}`);
    return child;
  }

  /** SIGTERM (the sample closes its clients with 1001), then waits for the process to end. */
  async stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await withTimeout(exited, STOP_TIMEOUT_MS, 'the sample to exit');
  }

  /** Kills what is still running and removes the build. */
  async dispose(): Promise<void> {
    for (const child of [...this.#children]) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
    }
    this.#tree.remove();
  }
}
