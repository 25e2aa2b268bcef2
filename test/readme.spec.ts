/**
 * The README is part of the interface: its options table and its error table are checked against the code, so
 * neither can drift, and the two set-up commands are the ones .ci/run and a newcomer use.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import * as errors from '../lib/index.js';
import { SETTINGS, SETTING_LAYERS, type SettingName, type SettingSpec } from '../lib/config/settings.js';
import { cellText, findMarkdownTable, readReadme } from './support/readme-table.js';

const readme = readReadme();

function shownDefault(spec: SettingSpec): string {
  if (spec.default === null) return '—';
  if (typeof spec.default === 'string' && spec.default.startsWith('Node.js/')) return 'Node.js/x.y.z nestjs-websockets/X.Y';
  return String(spec.default);
}

describe('README options table', () => {
  const table = findMarkdownTable(readme, { heading: 'Options and environment variables', columns: ['option', 'environment variable', 'default'] });

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

describe('README error table', () => {
  const table = findMarkdownTable(readme, { heading: 'Errors', columns: ['class', 'code'] });
  const classes = Object.entries(errors).filter(
    ([, value]) => typeof value === 'function' && value.prototype instanceof errors.WebSocketsError,
  );

  it('lists every error class the package exports with the code its instances carry', () => {
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
      ClusterTimeoutError: new errors.ClusterTimeoutError('count', 5000, ['0'.repeat(32)]),
    };
    for (const [name, code] of listed) {
      expect(samples[name]?.code).toBe(code);
    }
  });
});

describe('README set-up', () => {
  it('has exactly the two set-up commands: run the sample, run the tests', () => {
    const setUp = readme.split('\n## Set-up')[1]?.split('\n## ')[0] ?? '';
    const commands = [...setUp.matchAll(/```bash\n([^\n]*)\n```/g)].map((m) => m[1]?.replace(/\s+#.*$/, '').trim());
    expect(commands).toEqual(['npm install && npm start', 'npm test']);
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['start']).toContain('sample/main');
    expect(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')).toMatch(/npm test/);
  });
});
