/**
 * The documentation is part of the interface, so it is checked against the code: the options table of
 * docs/reference/options.md against the settings of the config layer, the error tables of docs/reference/errors.md
 * against the error classes, every relative link and anchor of the README, CONTRIBUTING, CHANGELOG, docs/ and bench/
 * by resolving it, and the README's two set-up commands against package.json and .ci/run. (The code of the README
 * and of the tutorial is compiled, and the tutorial's app run, by doc-code.spec.ts.)
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as clientErrors from '../lib/client/index.js';
import * as errors from '../lib/index.js';
import { SETTINGS, SETTING_LAYERS, type SettingName, type SettingSpec } from '../lib/config/settings.js';
import { brokenLinks, documentationFiles } from './support/markdown-links.js';
import { cellText, findMarkdownTable, readDoc } from './support/readme-table.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const readme = readDoc('README.md');

function shownDefault(spec: SettingSpec): string {
  if (spec.default === null) return '—';
  if (typeof spec.default === 'string' && spec.default.startsWith('Node.js/')) return 'Node.js/x.y.z nestjs-websockets/X.Y';
  return String(spec.default);
}

describe('options reference (docs/reference/options.md)', () => {
  const table = findMarkdownTable(readDoc('docs/reference/options.md'), {
    heading: 'Options and environment variables',
    columns: ['option', 'environment variable', 'default'],
  });

  it('lists every setting once, in the order of SETTINGS', () => {
    expect(table.rows.map((row) => cellText(row['option'] ?? ''))).toEqual(Object.values(SETTINGS).map((s: SettingSpec) => s.option));
  });

  it.each(Object.entries(SETTINGS))('gives %s its variable, default and the layer that reads it', (name, spec: SettingSpec) => {
    const row = table.rows.find((r) => cellText(r['option'] ?? '') === spec.option);
    expect(row).toBeDefined();
    expect(cellText(row?.['environment variable'] ?? '')).toBe(spec.env ?? '—');
    expect(cellText(row?.['default'] ?? '')).toBe(shownDefault(spec));
    expect(cellText(row?.['used by'] ?? '')).toBe(`${SETTING_LAYERS[name as SettingName]}/`);
  });
});

describe('errors reference (docs/reference/errors.md)', () => {
  const doc = readDoc('docs/reference/errors.md');

  it('lists every error class the package exports with the code its instances carry', () => {
    const table = findMarkdownTable(doc, { heading: 'Errors of the server and the Node client', columns: ['class', 'code'] });
    const classes = Object.entries(errors).filter(
      ([, value]) => typeof value === 'function' && value.prototype instanceof errors.WebSocketsError,
    );
    const listed = new Map(table.rows.map((row) => [cellText(row['class'] ?? ''), cellText(row['code'] ?? '')]));
    expect([...listed.keys()].sort()).toEqual(classes.map(([name]) => name).sort());
    const samples: Record<string, errors.WebSocketsError> = {
      HandshakeError: new errors.HandshakeError('x'),
      HandshakeLimitError: new errors.HandshakeLimitError('request-line', 8192, 8193),
      InvalidHeaderError: new errors.InvalidHeaderError('Upgrade', 'h2c'),
      InvalidExtensionsError: new errors.InvalidExtensionsError('x;;', 'expected a token'),
      InvalidMessageError: new errors.InvalidMessageError('invalid JSON', 1),
      OriginNotAllowedError: new errors.OriginNotAllowedError('http://evil.test'),
      NoEndpointError: new errors.NoEndpointError('/nowhere', '127.0.0.1'),
      InvalidStatusError: new errors.InvalidStatusError(401, [], Buffer.alloc(0)),
      OpenTimeoutError: new errors.OpenTimeoutError(10),
      ConnectionLimitError: new errors.ConnectionLimitError('maxConnections', 1, 1),
      RedirectError: new errors.RedirectError('x', undefined),
      IncompleteResponseError: new errors.IncompleteResponseError('x'),
      ProxyError: new errors.ProxyError('x', { proxy: 'http://127.0.0.1:3128' }),
      ProtocolError: new errors.ProtocolError('x'),
      InvalidUtf8Error: new errors.InvalidUtf8Error('x'),
      MessageTooBigError: new errors.MessageTooBigError(2, 1),
      TooManyFragmentsError: new errors.TooManyFragmentsError(2),
      SlowConsumerError: new errors.SlowConsumerError(2),
      InvalidStateError: new errors.InvalidStateError('x'),
      ConnectionClosedError: new errors.ConnectionClosedError(1000, ''),
      ConfigError: new errors.ConfigError('x', 'maxLineLength', 'x'),
      MessageTooDeepError: new errors.MessageTooDeepError(64, 1),
      RoomLimitError: new errors.RoomLimitError(128, 'lobby'),
      FileDescriptorLimitError: new errors.FileDescriptorLimitError('EMFILE', 1024, 1000),
      RedisClientMissingError: new errors.RedisClientMissingError(),
      RedisUnavailableError: new errors.RedisUnavailableError('redis://127.0.0.1:1', 'refused'),
    };
    for (const [name, code] of listed) {
      expect(samples[name]?.code).toBe(code);
    }
  });

  it('lists every error class of the client SDK with its code', () => {
    const table = findMarkdownTable(doc, { heading: 'Errors of the client', columns: ['class', 'code'] });
    const classes = Object.entries(clientErrors).filter(
      ([, value]) => typeof value === 'function' && value.prototype instanceof clientErrors.WebSocketsClientError,
    );
    const listed = new Map(table.rows.map((row) => [cellText(row['class'] ?? ''), cellText(row['code'] ?? '')]));
    expect([...listed.keys()].sort()).toEqual(classes.map(([name]) => name).sort());
    const samples: Record<string, clientErrors.WebSocketsClientError> = {
      HandshakeRefusedError: new clientErrors.HandshakeRefusedError(401, 'bad token'),
      ServerExceptionError: new clientErrors.ServerExceptionError('join', { status: 'error', message: 'x' }),
      RequestTimeoutError: new clientErrors.RequestTimeoutError('join', 10),
      ConnectionLostError: new clientErrors.ConnectionLostError(1006, ''),
      QueueFullError: new clientErrors.QueueFullError(1, 2),
      ClientClosedError: new clientErrors.ClientClosedError(),
      InvalidServerMessageError: new clientErrors.InvalidServerMessageError('x'),
      ClientConfigError: new clientErrors.ClientConfigError('requestTimeoutMs', -1, 'a positive number'),
    };
    for (const [name, code] of listed) {
      expect(samples[name]?.code).toBe(code);
    }
  });
});

describe('links', () => {
  const files = documentationFiles(ROOT);

  it('covers the README, CONTRIBUTING, CHANGELOG and every page of docs/', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', 'CONTRIBUTING.md', 'CHANGELOG.md', 'docs/README.md']));
    expect(files.filter((file) => file.startsWith('docs/')).length).toBeGreaterThan(15);
  });

  it('resolves every relative link and anchor', () => {
    expect(files.flatMap((file) => brokenLinks(ROOT, file))).toEqual([]);
  });

  it('reaches every page of docs/ from the docs index', () => {
    const index = readDoc('docs/README.md');
    const linked = new Set([...index.matchAll(/\]\(([^)#\s]+\.md)(?:#[^)]*)?\)/g)].map((m) => path.posix.join('docs', m[1] ?? '')));
    const pages = files.filter((file) => file.startsWith('docs/') && file !== 'docs/README.md');
    expect(pages.filter((page) => !linked.has(page))).toEqual([]);
  });
});

describe('README', () => {
  it('is short: under 200 lines', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(200);
  });

  it('has exactly the two set-up commands: run the sample, run the tests', () => {
    const setUp = readme.split('\n## Set-up')[1]?.split('\n## ')[0] ?? '';
    const commands = [...setUp.matchAll(/```bash\n([^\n]*)\n```/g)].map((m) => m[1]?.replace(/\s+#.*$/, '').trim());
    expect(commands).toEqual(['npm install && npm start', 'npm test']);
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['start']).toContain('sample/main');
    expect(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')).toMatch(/npm test/);
  });
});
