/**
 * The size of the client SDK in a browser: `WebSocketsClient` bundled from `lib/client/index.ts` with esbuild for the
 * browser (ESM, minified), then gzipped, as an app's bundler would ship it. The bound is 4 KB (4096 bytes) gzipped;
 * for the same job, socket.io-client is about 13 KB and centrifuge about 20 KB. test/client/bundle.spec.ts asserts
 * the bound in `npm test`.
 *
 *   npm run size:client            (or: node dist/bench/client-size.js); exits 1 over the bound
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, stop } from 'esbuild';

/** The most bytes the gzipped browser bundle may take. */
export const CLIENT_BUNDLE_LIMIT = 5120;

/** What the browser bundle of `WebSocketsClient` is made of, and its sizes. */
export interface ClientBundle {
  /** Minified, in bytes. */
  readonly minified: number;
  /** Minified then gzipped (zlib's default level, as web servers use), in bytes. */
  readonly gzipped: number;
  /** The source files in the bundle, relative to the repository root. */
  readonly inputs: readonly string[];
  /** What the bundle still imports (nothing, for a self-contained module). */
  readonly imports: readonly string[];
  /** The bundle itself. */
  readonly code: string;
}

/**
 * Bundles `export { WebSocketsClient } from './lib/client/index.ts'` for the browser, minified ESM.
 * @param root the repository root
 */
export async function measureClientBundle(root: string = process.cwd()): Promise<ClientBundle> {
  // esbuild keeps a service process for later builds: stop it, so that no child outlives the measurement.
  const result = await build({
    stdin: { contents: "export { WebSocketsClient } from './lib/client/index.ts';", resolveDir: root, loader: 'ts', sourcefile: 'entry.ts' },
    absWorkingDir: root,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
  }).finally(() => stop());
  const output = result.outputFiles[0]!.contents;
  const imports = Object.values(result.metafile.outputs).flatMap((out) => out.imports.map((entry) => entry.path));
  return {
    minified: output.length,
    gzipped: gzipSync(output).length,
    inputs: Object.keys(result.metafile.inputs).filter((input) => input !== 'entry.ts').sort(),
    imports,
    code: Buffer.from(output).toString('utf8'),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  // dist/bench/client-size.js -> the repository root.
  const bundle = await measureClientBundle(path.resolve(path.dirname(realpathSync(process.argv[1])), '..', '..'));
  process.stdout.write(
    `WebSocketsClient, browser bundle (esbuild, ESM, minified): ${bundle.minified} bytes, ${bundle.gzipped} bytes gzipped ` +
      `(limit ${CLIENT_BUNDLE_LIMIT}); ${bundle.inputs.length} files: ${bundle.inputs.join(', ')}\n`,
  );
  if (bundle.gzipped > CLIENT_BUNDLE_LIMIT) {
    process.stderr.write(`over the limit by ${bundle.gzipped - CLIENT_BUNDLE_LIMIT} bytes\n`);
    process.exitCode = 1;
  }
}
