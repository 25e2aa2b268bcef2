/**
 * Reading one setting: an explicit option, then its environment variable, then its default from `SETTINGS`,
 * validated strictly (a numeric variable must be ASCII digits). The resolvers of the other modules of this folder are
 * built on these; none of them reads `process.env` (callers pass the environment).
 */
import { ConfigError } from '../errors.js';
import { SETTINGS, describeSetting, type SettingName } from './settings.js';

/** The environment as the caller passes it (usually `process.env`). */
export type Environment = Readonly<Record<string, string | undefined>>;

const POSITIVE_INTEGER = /^\d+$/;

export function invalid(name: SettingName, value: unknown, expected: string, from: 'option' | 'env'): ConfigError {
  const spec = SETTINGS[name];
  const where = from === 'env' && spec.env !== null ? spec.env : `option ${spec.option}`;
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new ConfigError(`${where} must be ${expected}; got ${shown} (${describeSetting(name)})`, spec.option, value);
}

/** A positive safe integer from an option, else the environment (strictly `/^\d+$/`), else the default. */
export function resolveInteger(name: SettingName, option: unknown, env: Environment, unit: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const spec = SETTINGS[name];
  const expected =
    max !== Number.MAX_SAFE_INTEGER
      ? `an integer from ${min} to ${max} (${unit})`
      : min === 1
        ? `a positive integer (${unit})`
        : min === 0
          ? `a non-negative integer (${unit})`
          : `an integer of at least ${min} (${unit})`;
  if (option !== undefined) {
    if (typeof option !== 'number' || !Number.isSafeInteger(option) || option < min || option > max) {
      throw invalid(name, option, expected, 'option');
    }
    return option;
  }
  const raw = spec.env === null ? undefined : env[spec.env];
  if (raw !== undefined && raw !== '') {
    const value = Number(raw);
    if (!POSITIVE_INTEGER.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw invalid(name, raw, expected, 'env');
    }
    return value;
  }
  return spec.default as number;
}

/** Like `resolveInteger`, but `null` (option) or `off`/`none` (environment) turns the timeout off. */
export function resolveTimeout(name: SettingName, option: unknown, env: Environment): number | null {
  if (option === null) return null;
  const spec = SETTINGS[name];
  const raw = spec.env === null ? undefined : env[spec.env];
  if (option === undefined && raw !== undefined && /^(off|none)$/i.test(raw)) return null;
  return resolveInteger(name, option, env, 'milliseconds, or off');
}

/** Like `resolveInteger`, but `null` (option) or `off`/`none` (environment) means no limit, and so does a `null` default. */
export function resolveOptionalCount(name: SettingName, option: unknown, env: Environment, unit: string): number | null {
  if (option === null) return null;
  const spec = SETTINGS[name];
  const raw = spec.env === null ? undefined : env[spec.env];
  if (option === undefined) {
    if (raw !== undefined && /^(off|none)$/i.test(raw)) return null;
    if (raw === undefined || raw === '') return spec.default as number | null;
  }
  return resolveInteger(name, option, env, `${unit}, or ${option === undefined ? 'off' : 'null'} for no limit`);
}

/** An identity header: an explicit option (string, or `null` for none), else the variable (empty: none), else the default. */
export function resolveHeader(name: 'serverHeader' | 'userAgentHeader', option: unknown, env: Environment): string | null {
  const spec = SETTINGS[name];
  if (option !== undefined) {
    if (option === null) return null;
    if (typeof option !== 'string' || !isHeaderValue(option)) {
      throw invalid(name, option, 'a string of visible ASCII characters and spaces, or null for no header', 'option');
    }
    return option === '' ? null : option;
  }
  const raw = env[spec.env];
  if (raw !== undefined) {
    if (raw === '') return null;
    if (!isHeaderValue(raw)) throw invalid(name, raw, 'visible ASCII characters and spaces, or empty for no header', 'env');
    return raw;
  }
  return spec.default;
}

/** RFC 9110 field-value characters, restricted to printable ASCII so that nothing can split a header. */
export function isHeaderValue(value: string): boolean {
  return /^[\x20-\x7e]*$/.test(value);
}
