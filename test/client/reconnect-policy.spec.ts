/**
 * The client's backoff and close rules as functions: the bounds (0.5 s, x2, 30 s cap), full jitter, the option
 * checks, and which close codes end the client (1000, 1008, 44xx but 4408 and 4429) or make it try again.
 */
import { describe, expect, it } from '@jest/globals';
import { ClientConfigError } from '../../lib/client/errors.js';
import { closeOutcome, reconnectDelay, resolveReconnect } from '../../lib/client/reconnect-policy.js';

describe('reconnect policy', () => {
  it('defaults to 0.5 s, x2, a 30 s cap, full jitter, no attempt limit and a reset after 5 s', () => {
    expect(resolveReconnect(undefined)).toEqual({ initialDelayMs: 500, maxDelayMs: 30_000, factor: 2, jitter: 1, maxAttempts: Infinity, resetAfterMs: 5000 });
    expect(resolveReconnect(false)).toBeNull();
    expect(resolveReconnect({ factor: 1.5 })?.factor).toBe(1.5);
  });

  it('bounds attempt n by initialDelayMs * factor^(n-1), capped at maxDelayMs', () => {
    const exact = resolveReconnect({ jitter: 0 })!;
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map((attempt) => reconnectDelay(exact, attempt))).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('takes full jitter from the whole window, and partial jitter from its top part', () => {
    const full = resolveReconnect({})!;
    expect([0, 0.25, 0.999].map((r) => reconnectDelay(full, 3, () => r))).toEqual([2000, 1500, 2]);
    const half = resolveReconnect({ jitter: 0.5 })!;
    expect(reconnectDelay(half, 3, () => 0.999)).toBe(1001);
    for (let i = 0; i < 100; i++) {
      const delay = reconnectDelay(full, 4);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(4000);
    }
  });

  it.each([
    [{ initialDelayMs: -1 }, 'option reconnect.initialDelayMs must be a number from 0 to Infinity; got -1'],
    [{ factor: 0.5 }, 'option reconnect.factor must be a number from 1 to Infinity; got 0.5'],
    [{ jitter: 2 }, 'option reconnect.jitter must be a number from 0 to 1; got 2'],
    [{ maxAttempts: 0 }, 'option reconnect.maxAttempts must be a number from 1 to Infinity; got 0'],
    [{ maxDelayMs: NaN }, 'option reconnect.maxDelayMs must be a number from 0 to Infinity; got NaN'],
    [{ resetAfterMs: '5' as unknown as number }, 'option reconnect.resetAfterMs must be a number from 0 to Infinity; got "5"'],
  ])('refuses %j', (option, message) => {
    expect(() => resolveReconnect(option)).toThrow(message);
    expect(() => resolveReconnect(option)).toThrow(ClientConfigError);
  });

  it('ends on 1000, 1008 and refusals (4400-4499 but 4408 and 4429); tries again on anything else', () => {
    const codes = [1000, 1001, 1002, 1006, 1008, 1011, 1012, 1013, 4000, 4399, 4400, 4401, 4403, 4404, 4408, 4429, 4499, 4500, 4503];
    expect(Object.fromEntries(codes.map((code) => [code, closeOutcome(code)]))).toEqual({
      1000: 'final', 1001: 'retry', 1002: 'retry', 1006: 'retry', 1008: 'final', 1011: 'retry', 1012: 'retry', 1013: 'retry',
      4000: 'retry', 4399: 'retry', 4400: 'refused', 4401: 'refused', 4403: 'refused', 4404: 'refused', 4408: 'retry',
      4429: 'retry', 4499: 'refused', 4500: 'retry', 4503: 'retry',
    });
  });
});
