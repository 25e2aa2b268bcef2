/**
 * Keeps the layer table of the house style true (STYLE.md §5.1), by reading the sources:
 * - lib/protocol/ is sans-I/O: it imports only itself, config/errors/settings, node:buffer and node:crypto, and uses
 *   no timers, no clock and nothing of `process` (no environment);
 * - lib/node/ imports only protocol/, config/errors/settings, itself and Node's built-ins: never nest/ or a package;
 * - lib/client/ (the browser build: every file but node.ts and node-*.ts) imports only itself and the two core files
 *   that import nothing (close codes, the bearer subprotocol): nothing of Node, of the server or of a package;
 * - nothing in lib/ imports a package other than the Nest peer dependencies, and only lib/nest/ and lib/testing/ may
 *   (no `ws` at run time: it is a dev dependency for interop tests);
 * - lib/testing/ (`nestjs-websockets/testing`) stands on top: it may use the client SDK and every layer, and nothing
 *   but an entry point imports it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const packageJson = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { peerDependencies?: Record<string, string> };
const PEER_PACKAGES = Object.keys(packageJson.peerDependencies ?? {});

/** What a source file pulls in: module specifiers and the forbidden globals it touches, with line numbers. */
interface Use {
  readonly line: number;
  readonly kind: 'import' | 'global';
  readonly what: string;
}

/** Globals that mean a timer, the clock or the environment: none belongs in a sans-I/O core. */
const FORBIDDEN_GLOBALS = new Set([
  'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate',
  'process', 'performance',
]);

/** Static imports, re-exports, `import type`, dynamic `import()`, `require()`, and forbidden globals. */
function usesOf(fileName: string, source: string): Use[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const uses: Use[] = [];
  const lineOf = (node: ts.Node): number => file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      uses.push({ line: lineOf(node), kind: 'import', what: node.moduleSpecifier.text });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expr = node.moduleReference.expression;
      if (ts.isStringLiteral(expr)) uses.push({ line: lineOf(node), kind: 'import', what: expr.text });
    } else if (ts.isCallExpression(node) && (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))) {
      const [arg] = node.arguments;
      uses.push({ line: lineOf(node), kind: 'import', what: arg !== undefined && ts.isStringLiteralLike(arg) ? arg.text : '<computed>' });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      uses.push({ line: lineOf(node), kind: 'import', what: node.argument.literal.text });
    } else if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Date' && node.name.text === 'now') {
      uses.push({ line: lineOf(node), kind: 'global', what: 'Date.now' });
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Date') {
      uses.push({ line: lineOf(node), kind: 'global', what: 'new Date' });
    } else if (ts.isIdentifier(node) && FORBIDDEN_GLOBALS.has(node.text) && !isPropertyName(node)) {
      uses.push({ line: lineOf(node), kind: 'global', what: node.text });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return uses;
}

/** `x.setTimeout` or `{ process: 1 }` name a property, not the global. */
function isPropertyName(node: ts.Identifier): boolean {
  const parent = node.parent;
  return (
    (ts.isPropertyAccessExpression(parent) && parent.name === node) ||
    ((ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent) || ts.isPropertySignature(parent) ||
      ts.isMethodDeclaration(parent) || ts.isMethodSignature(parent)) && parent.name === node)
  );
}

/** The layers of lib/, bottom up: a file may import its own layer and those below it, never above (STYLE.md §5.1). */
const LAYERS = ['config', 'protocol', 'node', 'broadcast', 'nest'] as const;
type Layer = (typeof LAYERS)[number] | 'client' | 'testing' | 'entry';

/** The layer of a file of lib/ (a path relative to the repository root, with `/`). */
function layerOf(file: string): Layer {
  const [, folder] = file.split('/');
  if (folder === 'errors.ts' || folder === 'config') return 'config';
  if (folder === 'protocol' || folder === 'node' || folder === 'broadcast' || folder === 'nest' || folder === 'client' || folder === 'testing') return folder;
  return 'entry';
}

/** The file a relative specifier of `from` points to (`.js` read as the `.ts` source). */
function target(from: string, spec: string): string {
  return path.posix.join(path.posix.dirname(from), spec).replace(/\.js$/, '.ts');
}

/** The only files of the core that the browser client shares: they import nothing, and use nothing of Node. */
const CLIENT_SHARED = ['../protocol/close-codes.js', '../protocol/bearer-subprotocol.js', '../protocol/session-subprotocol.js'];

/** Whether a file of lib/client/ is reached only through the Node export condition (`node.ts`, `node-*.ts`). */
function isNodeOnlyClientFile(file: string): boolean {
  return /^node(-[\w-]+)?\.ts$/.test(path.basename(file));
}

/**
 * Why a use is not allowed in a browser file of lib/client/, or `null`: only ./* (not the Node-only files) and
 * CLIENT_SHARED; no node:*, no package, no `process`.
 */
function clientViolation(use: Use): string | null {
  if (use.kind === 'global') return use.what === 'process' ? 'uses process (the browser build has none)' : null;
  const spec = use.what;
  if (spec.startsWith('./') && !spec.slice(2).includes('/') && !isNodeOnlyClientFile(spec.replace(/\.js$/, '.ts'))) return null;
  if (CLIENT_SHARED.includes(spec)) return null;
  return `imports ${spec} (the browser client may import only ./* and ${CLIENT_SHARED.join(', ')}; Node goes in node.ts / node-*.ts)`;
}

/** Built-ins the sans-I/O core may use: bytes and hashes, nothing that does I/O. */
const PROTOCOL_BUILTINS = new Set(['node:buffer', 'node:crypto']);

/** Why a use by `file` breaks the layering, or `null` when it does not. */
function layerViolation(use: Use, file: string): string | null {
  const layer = layerOf(file);
  if (use.kind === 'global') {
    if (layer === 'client' && !isNodeOnlyClientFile(file)) return clientViolation(use);
    if (layer === 'protocol') return `uses ${use.what} (protocol/ is sans-I/O: no timers, clock or process; take them as parameters)`;
    return null;
  }
  const spec = use.what;
  if (spec.startsWith('.')) {
    const to = target(file, spec);
    if (!to.startsWith('lib/')) return `imports ${spec}, outside lib/`;
    const toLayer = layerOf(to);
    if (layer === 'entry' || toLayer === layer) return null;
    // The testing kit stands on the client SDK and the Nest layer; nothing of lib/ but it reaches into it.
    if (layer === 'testing') return toLayer === 'entry' ? `imports ${spec} (an entry point from testing/)` : null;
    if (toLayer === 'testing') return `imports ${spec} (testing/ from ${layer}/: only the kit's own files use it)`;
    if (layer === 'client') {
      // The SDK stands on the WHATWG WebSocket; its Node-only files (node.ts, node-*.ts) may use the layers below.
      if (isNodeOnlyClientFile(file)) return toLayer === 'nest' || toLayer === 'broadcast' ? `imports ${spec} (client/ never uses ${toLayer}/)` : null;
      return clientViolation(use);
    }
    if (toLayer === 'client' || toLayer === 'entry') return `imports ${spec} (${toLayer === 'client' ? 'the client SDK' : 'an entry point'} from ${layer}/)`;
    return LAYERS.indexOf(toLayer) <= LAYERS.indexOf(layer) ? null : `imports ${spec}, from ${toLayer}/ above ${layer}/ (layers point downward only)`;
  }
  if (spec.startsWith('node:')) {
    if (layer === 'protocol' && !PROTOCOL_BUILTINS.has(spec)) return `imports ${spec} (protocol/ may use only node:buffer and node:crypto)`;
    if (layer === 'client' && !isNodeOnlyClientFile(file)) return `imports ${spec} (nothing of node:* may reach a browser bundle)`;
    return null;
  }
  return null;
}

/** The lines where `source` reads `process.env` (comments do not count). */
function readsEnvironment(source: string): number[] {
  const file = ts.createSourceFile('config.ts', source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const lines: number[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'process' && node.name.text === 'env') {
      lines.push(file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return lines;
}

/** Why an import of a package is not allowed, or `null`: only nest/ imports the Nest peers, only broadcast/redis/ ioredis. */
function packageViolation(use: Use, file: string): string | null {
  if (use.kind === 'global' || use.what.startsWith('.') || use.what.startsWith('node:')) return null;
  const pkg = use.what.startsWith('@') ? use.what.split('/').slice(0, 2).join('/') : use.what.split('/')[0]!;
  const layer = layerOf(file);
  if (pkg === 'ioredis' && file.startsWith('lib/broadcast/redis/')) return null;
  if (pkg === '@opentelemetry/api' || pkg === '@nestjs/terminus') return layer === 'nest' ? null : `imports ${pkg} outside nest/`;
  if ((layer === 'nest' || layer === 'testing') && PEER_PACKAGES.includes(pkg)) return null;
  return layer === 'nest'
    ? `imports ${use.what}, which is not a peer dependency (runtime dependencies: none but the Nest peers)`
    : `imports the package ${use.what} (below nest/ nothing imports Nest or any package)`;
}

function tsFiles(dir: string): string[] {
  const full = path.join(ROOT, dir);
  return readdirSync(full, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => `${dir}/${name.split(path.sep).join('/')}`)
    .sort();
}

function violations(files: readonly string[], rule: (use: Use, file: string) => string | null): string[] {
  return files.flatMap((file) =>
    usesOf(file, readFileSync(path.join(ROOT, file), 'utf8')).flatMap((use) => {
      const why = rule(use, file);
      return why === null ? [] : [`${file}:${use.line} ${why}`];
    }),
  );
}

describe('the layer checker', () => {
  // The checker must see every form of import and every forbidden global, or the tests below could not fail.
  const sample = [
    "import net from 'node:net';",
    "import type { Server } from 'node:http';",
    "export { x } from '../node/server.js';",
    "const m = await import('node:tls');",
    "const r = require('node:fs');",
    "type T = import('@nestjs/common').Type;",
    'const env = process.env.X;',
    'const t = setTimeout(() => undefined, 1);',
    'const now = Date.now();',
    'const d = new Date();',
    "import { Buffer } from 'node:buffer';",
    "import { CloseCode } from './close-codes.js';",
    'const o = { setTimeout: 1 }; o.setTimeout;',
  ].join('\n');

  it('finds every import form and forbidden global, with its line', () => {
    expect(usesOf('sample.ts', sample)).toEqual([
      { line: 1, kind: 'import', what: 'node:net' },
      { line: 2, kind: 'import', what: 'node:http' },
      { line: 3, kind: 'import', what: '../node/server.js' },
      { line: 4, kind: 'import', what: 'node:tls' },
      { line: 5, kind: 'import', what: 'node:fs' },
      { line: 6, kind: 'import', what: '@nestjs/common' },
      { line: 7, kind: 'global', what: 'process' },
      { line: 8, kind: 'global', what: 'setTimeout' },
      { line: 9, kind: 'global', what: 'Date.now' },
      { line: 10, kind: 'global', what: 'new Date' },
      { line: 11, kind: 'import', what: 'node:buffer' },
      { line: 12, kind: 'import', what: './close-codes.js' },
    ]);
  });

  it('applies the protocol/ rule: only the last two lines of the sample are allowed', () => {
    const file = 'lib/protocol/sample.ts';
    const verdicts = usesOf('sample.ts', sample).map((use) => layerViolation(use, file) === null && packageViolation(use, file) === null);
    expect(verdicts).toEqual([false, false, false, false, false, false, false, false, false, false, true, true]);
  });

  it('points layers downward: node/ may use protocol/ and config/, not broadcast/ or nest/; config/ uses nothing above', () => {
    const allowed = (file: string, what: string): boolean => layerViolation({ line: 1, kind: 'import', what }, file) === null;
    expect(['node:net', '../protocol/frame.js', '../config/index.js', '../errors.js', './deflate.js'].map((w) => allowed('lib/node/x.ts', w))).toEqual([
      true, true, true, true, true,
    ]);
    expect(['../nest/websockets.module.js', '../broadcast/rooms.js', '../client/client.js'].map((w) => allowed('lib/node/x.ts', w))).toEqual([false, false, false]);
    expect(['../node/server.js', '../protocol/frame.js'].map((w) => allowed('lib/broadcast/x.ts', w))).toEqual([true, true]);
    expect(allowed('lib/config/x.ts', '../protocol/frame.js')).toBe(false);
    expect(allowed('lib/errors.ts', './config/settings.js')).toBe(true);
    expect(allowed('lib/client/x.ts', '../node/client.js')).toBe(false);
    expect(allowed('lib/client/node-websocket.ts', '../node/client.js')).toBe(true);
    expect(allowed('lib/client/x.ts', 'node:events')).toBe(false);
    expect(['../client/node.js', '../nest/websockets.adapter.js', '../protocol/close-codes.js', './test-client.js'].map((w) => allowed('lib/testing/x.ts', w))).toEqual([
      true, true, true, true,
    ]);
    expect(allowed('lib/testing/x.ts', '../index.js')).toBe(false);
    expect(['lib/nest/x.ts', 'lib/client/node.ts', 'lib/node/x.ts'].map((file) => allowed(file, '../testing/index.js'))).toEqual([false, false, false]);
  });

  it('lets only nest/ import the Nest peers, and nothing import another package', () => {
    const allowed = (file: string, what: string): boolean => packageViolation({ line: 1, kind: 'import', what }, file) === null;
    expect(allowed('lib/nest/x.ts', '@nestjs/common')).toBe(true);
    expect(allowed('lib/nest/x.ts', 'ws')).toBe(false);
    expect(allowed('lib/node/x.ts', 'rxjs')).toBe(false);
    expect(allowed('lib/broadcast/x.ts', '@nestjs/common')).toBe(false);
    expect(allowed('lib/broadcast/redis/x.ts', 'ioredis')).toBe(true);
    expect(allowed('lib/testing/x.ts', '@nestjs/common')).toBe(true);
    expect(allowed('lib/testing/x.ts', '@nestjs/testing')).toBe(false);
  });
});

describe('layering of lib/', () => {
  it('finds the sources it checks', () => {
    expect(tsFiles('lib/protocol')).toContain('lib/protocol/frame.ts');
    expect(tsFiles('lib/config')).toContain('lib/config/settings.ts');
  });

  it('every import of lib/ points to its own layer or one below (config, protocol, node, broadcast, nest); protocol/ is sans-I/O', () => {
    expect(violations(tsFiles('lib'), (use, file) => layerViolation(use, file))).toEqual([]);
  });

  it('lib/ has no runtime dependency but the Nest peers (and ioredis in broadcast/redis/), and nothing below nest/ imports Nest', () => {
    expect(violations(tsFiles('lib'), (use, file) => packageViolation(use, file))).toEqual([]);
  });

  it('lib/config/ never reads process.env: callers pass the environment', () => {
    const reads = tsFiles('lib/config').flatMap((file) => readsEnvironment(readFileSync(path.join(ROOT, file), 'utf8')).map((line) => `${file}:${line}`));
    expect(reads).toEqual([]);
  });

  it('lib/client/ outside node.ts and node-*.ts imports nothing of Node, of the server or of a package', () => {
    const files = tsFiles('lib/client').filter((file) => !isNodeOnlyClientFile(file));
    expect(files).toContain(path.join('lib/client', 'websockets-client.ts'));
    expect(violations(files, (use) => clientViolation(use))).toEqual([]);
    // The files the browser build shares import nothing at all.
    expect(violations(['lib/protocol/close-codes.ts', 'lib/protocol/bearer-subprotocol.ts', 'lib/protocol/session-subprotocol.ts'], (use) => (use.kind === 'import' ? `imports ${use.what}` : null))).toEqual([]);
  });

  it('applies the client rule: ./ and the shared files yes; node files, node:*, the server and process no', () => {
    const allowed = (what: string, kind: Use['kind'] = 'import'): boolean => clientViolation({ line: 1, kind, what }) === null;
    expect(['./errors.js', '../protocol/close-codes.js', '../protocol/bearer-subprotocol.js', 'setTimeout'].map((what) => allowed(what, what === 'setTimeout' ? 'global' : 'import'))).toEqual([true, true, true, true]);
    expect(['./node-websocket.js', './node.js', 'node:net', '../node/client.js', '../errors.js', '../protocol/frame.js', 'ws'].map((what) => allowed(what))).toEqual([false, false, false, false, false, false, false]);
    expect(allowed('process', 'global')).toBe(false);
  });
});

describe('size of the files of lib/', () => {
  it('a file over about 400 lines (420) says at its top, in its first comment, why it is one file', () => {
    const unexplained = tsFiles('lib')
      .map((file) => ({ file, source: readFileSync(path.join(ROOT, file), 'utf8') }))
      .filter(({ source }) => source.split('\n').length > 420)
      .filter(({ source }) => !/400 lines/.test(/^\/\*\*[\s\S]*?\*\//.exec(source)?.[0] ?? ''))
      .map(({ file }) => file);
    expect(unexplained).toEqual([]);
  });
});
