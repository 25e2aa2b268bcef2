/**
 * The client SDK as a browser gets it: `WebSocketsClient` bundled by esbuild for the browser (ESM, minified) is at
 * most 4 KB gzipped, is made of lib/client's browser files and the two core files they share and nothing of Node,
 * imports nothing, is exactly the set of modules the sample serves to its page, and is the size the client reference (docs/reference/client-api.md) states.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { CLIENT_BUNDLE_LIMIT, measureClientBundle, type ClientBundle } from '../../bench/client-size.js';
import { CLIENT_MODULES } from '../../sample/client-modules.js';

let bundle: ClientBundle;
beforeAll(async () => {
  bundle = await measureClientBundle();
}, 30_000);

describe('the browser bundle of WebSocketsClient', () => {
  it(`is at most ${CLIENT_BUNDLE_LIMIT} bytes gzipped`, () => {
    expect(bundle.minified).toBeGreaterThan(1000);
    expect(bundle.gzipped).toBeLessThanOrEqual(CLIENT_BUNDLE_LIMIT);
  });

  it('holds lib/client and the two shared core files, nothing of Node, and imports nothing', () => {
    expect(bundle.inputs.filter((input) => input.startsWith('node:') || !/^lib\/(client|protocol)\//.test(input))).toEqual([]);
    expect(bundle.inputs.filter((input) => input.startsWith('lib/protocol/'))).toEqual(['lib/protocol/bearer-subprotocol.ts', 'lib/protocol/close-codes.ts', 'lib/protocol/session-subprotocol.ts']);
    expect(bundle.inputs.filter((input) => /\/node(-[\w-]+)?\.ts$/.test(input))).toEqual([]);
    expect(bundle.imports).toEqual([]);
    // Nothing that a browser lacks: no process, Buffer or require.
    expect(bundle.code).not.toMatch(/\bprocess\.|\bBuffer\b|\brequire\(/);
  });

  it('is the size the client reference gives, within 2 %', () => {
    const stated = /\*\*(\d+) bytes\*\* gzipped \((\d+) minified\)/.exec(readFileSync('docs/reference/client-api.md', 'utf8'));
    expect(stated).not.toBeNull();
    expect(Math.abs(Number(stated![1]) - bundle.gzipped)).toBeLessThanOrEqual(bundle.gzipped * 0.02);
    expect(Math.abs(Number(stated![2]) - bundle.minified)).toBeLessThanOrEqual(bundle.minified * 0.02);
  });

  it('is what the sample serves to its page under /sdk/', () => {
    const served = [...CLIENT_MODULES].sort();
    expect(bundle.inputs.map((input) => input.replace(/^lib\//, '').replace(/\.ts$/, '.js')).sort()).toEqual(served);
  });
});
