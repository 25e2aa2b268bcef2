/**
 * `@opentelemetry/api`, an optional peer, loaded the first time a gateway server is created and never before: an
 * app without it loads nothing and pays nothing. Loaded synchronously (`require`) because the adapter's `create()`
 * is synchronous; the API keeps its providers in a global registry, so this copy sees the providers that the app
 * registered through its own `import` of the package.
 */
import { createRequire } from 'node:module';
import type * as OpenTelemetryApi from '@opentelemetry/api';

export type OpenTelemetry = typeof OpenTelemetryApi;

/** How the API is loaded; tests replace it to stand for an app without the package. */
export type OpenTelemetryLoader = () => OpenTelemetry | null;

const defaultLoader: OpenTelemetryLoader = () => {
  const require = createRequire(import.meta.url);
  try {
    return require('@opentelemetry/api') as OpenTelemetry;
  } catch {
    return null;
  }
};

let loader: OpenTelemetryLoader = defaultLoader;
let loaded: OpenTelemetry | null | undefined;

/** The API, or `null` when it is not installed. Loaded once. */
export function openTelemetryApi(): OpenTelemetry | null {
  if (loaded === undefined) loaded = loader();
  return loaded;
}

/** @internal Replaces the loader (`undefined`: the real one) and forgets what was loaded. For tests. */
export function setOpenTelemetryLoader(replacement: OpenTelemetryLoader | undefined): void {
  loader = replacement ?? defaultLoader;
  loaded = undefined;
}
