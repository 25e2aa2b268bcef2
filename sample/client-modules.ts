/**
 * The client SDK as the chat page loads it: the ES modules that TypeScript emitted for `lib/client/index.ts` and
 * what it imports, served as they are (they import each other by relative path and import no package, so a browser
 * loads them without a bundler). They are read from the compiled tree next to the sample's own compiled files
 * (`dist/lib/` for `npm start`); a sample run from its TypeScript sources has none, and says so.
 */
import { readFile } from 'node:fs/promises';

/**
 * Every file the browser build reaches, under `/sdk/`: a fixed list, so that nothing else of the tree can be read.
 * test/client/bundle.spec.ts checks it against what esbuild bundles for the browser.
 */
export const CLIENT_MODULES: readonly string[] = Object.freeze([
  'client/index.js',
  'client/websockets-client.js',
  'client/errors.js',
  'client/reconnect-policy.js',
  'client/websocket-like.js',
  'client/client-session.js',
  'protocol/close-codes.js',
  'protocol/bearer-subprotocol.js',
  'protocol/session-subprotocol.js',
]);

/** The compiled `lib/` that sits next to the compiled sample (`dist/sample/` -> `dist/lib/`). */
const LIB = new URL('../lib/', import.meta.url);

/**
 * The text of one module of `CLIENT_MODULES`, or `null` for a path not in the list or a file not built.
 * @param path e.g. `client/index.js`
 */
export async function readClientModule(path: string): Promise<string | null> {
  if (!CLIENT_MODULES.includes(path)) return null;
  try {
    return await readFile(new URL(path, LIB), 'utf8');
  } catch {
    return null;
  }
}
