/**
 * Keeps the layer table of the house style true (STYLE.md §5.1), by reading the sources:
 * - lib/protocol/ is sans-I/O: it imports only itself, config/errors/settings, node:buffer and node:crypto, and uses
 *   no timers, no clock and nothing of `process` (no environment);
 * - lib/node/ imports only protocol/, config/errors/settings, itself and Node's built-ins: never nest/ or a package;
 * - lib/client/ (the browser build: every file but node.ts and node-*.ts) imports only itself and the two core files
 *   that import nothing (close codes, the bearer subprotocol): nothing of Node, of the server or of a package;
 * - nothing in lib/ imports a package other than the Nest peer dependencies, and only lib/nest/ may (no `ws` at
 *   run time: it is a dev dependency for interop tests).
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

const SHARED = ['../config.js', '../errors.js', '../settings.js'];

/** Why a use is not allowed in lib/protocol/, or `null` when it is. */
function protocolViolation(use: Use): string | null {
  if (use.kind === 'global') return `uses ${use.what} (protocol/ is sans-I/O: no timers, clock or process; take them as parameters)`;
  const spec = use.what;
  if ((spec.startsWith('./') && !spec.slice(2).includes('/')) || SHARED.includes(spec) || spec === 'node:buffer' || spec === 'node:crypto') return null;
  return `imports ${spec} (protocol/ may import only ./*, ${SHARED.join(', ')}, node:buffer and node:crypto)`;
}

/** Why a use is not allowed in lib/node/, or `null` when it is. */
function nodeViolation(use: Use): string | null {
  if (use.kind === 'global') return null;
  const spec = use.what;
  if (spec.startsWith('node:') || (spec.startsWith('./') && !spec.slice(2).includes('/')) || spec.startsWith('../protocol/') || SHARED.includes(spec)) return null;
  return `imports ${spec} (node/ may import only ./*, ../protocol/*, ${SHARED.join(', ')} and node:* built-ins; never nest/, @nestjs/*, rxjs or any package)`;
}

/** The only files of the core that the browser client shares: they import nothing, and use nothing of Node. */
const CLIENT_SHARED = ['../protocol/close-codes.js', '../protocol/bearer-subprotocol.js'];

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

/** Why an import of a package is not allowed anywhere in lib/ (outside nest/, none is), or `null`. */
function packageViolation(use: Use, inNest: boolean): string | null {
  if (use.kind === 'global' || use.what.startsWith('.') || use.what.startsWith('node:')) return null;
  const pkg = use.what.startsWith('@') ? use.what.split('/').slice(0, 2).join('/') : use.what.split('/')[0];
  if (inNest && PEER_PACKAGES.includes(pkg ?? '')) return null;
  return inNest
    ? `imports ${use.what}, which is not a peer dependency (runtime dependencies: none but the Nest peers)`
    : `imports the package ${use.what} (only lib/nest/ may import packages, and only the Nest peer dependencies)`;
}

function tsFiles(dir: string): string[] {
  const full = path.join(ROOT, dir);
  return readdirSync(full, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => path.join(dir, name))
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
    const verdicts = usesOf('sample.ts', sample).map((use) => protocolViolation(use) === null);
    expect(verdicts).toEqual([false, false, false, false, false, false, false, false, false, false, true, true]);
  });

  it('applies the node/ rule: built-ins and protocol/ yes; node/ from protocol/ no; nest/ and packages no', () => {
    const allowed = (what: string): boolean => nodeViolation({ line: 1, kind: 'import', what }) === null;
    expect(['node:net', '../protocol/frame.js', '../config.js', './deflate.js'].map(allowed)).toEqual([true, true, true, true]);
    expect(['../nest/websockets.module.js', '@nestjs/common', 'rxjs', 'ws', 'net'].map(allowed)).toEqual([false, false, false, false, false]);
  });
});

describe('layering of lib/', () => {
  it('finds the sources it checks', () => {
    expect(tsFiles('lib/protocol')).toContain(path.join('lib/protocol', 'frame.ts'));
  });

  it('lib/protocol/ is sans-I/O: no net/tls/http/fs/timers, no process, no clock, nothing from node/ or nest/', () => {
    expect(violations(tsFiles('lib/protocol'), (use) => protocolViolation(use))).toEqual([]);
  });

  it('lib/node/ never imports nest/, @nestjs/*, rxjs or any package', () => {
    expect(violations(tsFiles('lib/node'), (use) => nodeViolation(use))).toEqual([]);
  });

  it('lib/client/ outside node.ts and node-*.ts imports nothing of Node, of the server or of a package', () => {
    const files = tsFiles('lib/client').filter((file) => !isNodeOnlyClientFile(file));
    expect(files).toContain(path.join('lib/client', 'websockets-client.ts'));
    expect(violations(files, (use) => clientViolation(use))).toEqual([]);
    // The files the browser build shares import nothing at all.
    expect(violations(['lib/protocol/close-codes.ts', 'lib/protocol/bearer-subprotocol.ts'], (use) => (use.kind === 'import' ? `imports ${use.what}` : null))).toEqual([]);
  });

  it('applies the client rule: ./ and the shared files yes; node files, node:*, the server and process no', () => {
    const allowed = (what: string, kind: Use['kind'] = 'import'): boolean => clientViolation({ line: 1, kind, what }) === null;
    expect(['./errors.js', '../protocol/close-codes.js', '../protocol/bearer-subprotocol.js', 'setTimeout'].map((what) => allowed(what, what === 'setTimeout' ? 'global' : 'import'))).toEqual([true, true, true, true]);
    expect(['./node-websocket.js', './node.js', 'node:net', '../node/client.js', '../errors.js', '../protocol/frame.js', 'ws'].map((what) => allowed(what))).toEqual([false, false, false, false, false, false, false]);
    expect(allowed('process', 'global')).toBe(false);
  });

  it('lib/ has no runtime dependency but the Nest peers, and only lib/nest/ uses them', () => {
    const files = tsFiles('lib');
    expect(violations(files, (use, file) => packageViolation(use, file.startsWith(path.join('lib', 'nest') + path.sep)))).toEqual([]);
  });

  it('config, settings and errors import nothing from the layers above them', () => {
    const files = ['lib/config.ts', 'lib/settings.ts', 'lib/errors.ts'];
    const allowed = new Set(['./config.js', './settings.js', './errors.js']);
    expect(violations(files, (use) => (use.kind === 'import' && !allowed.has(use.what) ? `imports ${use.what}` : null))).toEqual([]);
  });
});
