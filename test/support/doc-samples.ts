/**
 * The TypeScript files a document shows, so that a test can compile them and run them. A file is a ```ts block
 * whose first line is a comment naming its path (`// src/main.ts`). A document in steps (`## 1. ...`, `## 2. ...`)
 * shows a file again when a step changes it: each step's snapshot holds every file as it stands after that step.
 * Imports of `nestjs-websockets` and its subpaths resolve to this repository's sources, through the `exports` map of
 * package.json (the `types` of each entry point, `dist/lib/x.d.ts` read as `lib/x.ts`).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './compile.js';

/** The files of a document after one of its steps. */
export interface DocSnapshot {
  /** The heading of the step (`''` for a document without steps). */
  readonly step: string;
  /** Path -> source. */
  readonly files: ReadonlyMap<string, string>;
}

const FILE_COMMENT = /^\/\/ ((?:[\w.-]+\/)*[\w.-]+\.ts)\s*$/;

/**
 * The snapshots of a document: one per `## ` heading that shows at least one file, in order, each with the files of
 * the earlier steps it did not replace.
 */
export function docSnapshots(markdown: string): DocSnapshot[] {
  const snapshots: DocSnapshot[] = [];
  const files = new Map<string, string>();
  let step = '';
  let changed = false;
  const lines = markdown.split(/\r?\n/);
  const close = (): void => {
    if (changed) snapshots.push({ step, files: new Map(files) });
    changed = false;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const heading = /^## (.*)$/.exec(line)?.[1];
    if (heading !== undefined) {
      close();
      step = heading;
      continue;
    }
    const fence = /^(`{3,})(\S*)/.exec(line);
    if (fence === null) continue;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !(lines[j] ?? '').startsWith(fence[1] ?? '```'); j++) body.push(lines[j] ?? '');
    i = j;
    const name = FILE_COMMENT.exec(body[0] ?? '')?.[1];
    if ((fence[2] === 'ts' || fence[2] === 'typescript') && name !== undefined) {
      files.set(name, `${body.join('\n')}\n`);
      changed = true;
    }
  }
  close();
  return snapshots;
}

/** Every ```ts block of a document that names no file, for documents whose samples must all be files. */
export function unnamedTsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```(?:ts|typescript)\n([\s\S]*?)^```/gm)]
    .map((m) => m[1] ?? '')
    .filter((body) => !FILE_COMMENT.test(body.split('\n')[0] ?? ''));
}

/** `nestjs-websockets` and its subpaths -> the source file of each entry point, from package.json's `exports`. */
export function packageSourcePaths(condition: 'types' | 'node' = 'types'): Record<string, string> {
  type Target = string | { [condition: string]: Target };
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; exports: Record<string, Target> };
  const pick = (target: Target): string | undefined => {
    if (typeof target === 'string') return target;
    const chosen = condition === 'node' ? (target['node'] ?? target['types']) : target['types'];
    return chosen === undefined ? undefined : pick(chosen);
  };
  const paths: Record<string, string> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const file = pick(target);
    if (file === undefined || !file.startsWith('./dist/lib/')) continue;
    paths[subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`] = path.join(ROOT, file.replace(/^\.\/dist\//, '').replace(/\.d\.ts$|\.js$/, '.ts'));
  }
  return paths;
}

/** Bound on one type check (the samples and, through them, the package's sources and Nest's declarations). */
const TYPECHECK_TIMEOUT_MS = 180_000;

/**
 * Type-checks snapshots with the repository's strict settings (and the DOM library, for browser code), each in its
 * own directory under node_modules/.cache so that Nest and the other packages resolve.
 * @returns tsc's diagnostics for the snapshots' own files (those of the package's sources are the job of
 *   `npm run typecheck`), each prefixed with its snapshot's directory; empty when everything compiles
 */
export async function typecheckSnapshots(prefix: string, snapshots: readonly DocSnapshot[]): Promise<string[]> {
  const parent = path.join(ROOT, 'node_modules', '.cache');
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(path.join(parent, prefix));
  try {
    writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
    const files: string[] = [];
    snapshots.forEach((snapshot, index) => {
      for (const [name, source] of snapshot.files) {
        const file = path.join(dir, `step-${index + 1}`, name);
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, source);
        files.push(path.relative(dir, file));
      }
    });
    const paths = Object.fromEntries(Object.entries(packageSourcePaths()).map(([name, file]) => [name, [file]]));
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023', 'DOM', 'DOM.Iterable'],
        types: ['node'],
        strict: true,
        noImplicitOverride: true,
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
        isolatedModules: true,
        skipLibCheck: true,
        esModuleInterop: true,
        noEmit: true,
        paths,
      },
      files,
    };
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    try {
      await promisify(execFile)(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--pretty', 'false'], {
        cwd: dir,
        timeout: TYPECHECK_TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
      });
      return [];
    } catch (error) {
      const output = `${(error as { stdout?: string }).stdout ?? ''}${(error as { stderr?: string }).stderr ?? ''}`;
      const own = output.split('\n').filter((line) => /^step-\d+\//.test(line));
      // A failure with no diagnostic of the samples' own (a crash, a timeout) must not pass as "compiles".
      if (own.length === 0 && !/^\.\.\/|^\//m.test(output)) throw error;
      return own;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
