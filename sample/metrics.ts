/**
 * The sample's metrics: the OpenTelemetry SDK with its Prometheus exporter, which serves `GET /metrics` in the
 * Prometheus text format on a port of its own (SAMPLE_METRICS_PORT, default 9464, Prometheus's registered port for
 * it; `off` for none), bound to 127.0.0.1 unless SAMPLE_METRICS_HOST says otherwise. Registered before the app is
 * created, so that the adapter finds a meter provider when it creates the gateway servers. These packages are
 * dependencies of the sample only (dev dependencies of the package): the package itself needs `@opentelemetry/api`
 * at most.
 */
import { Logger } from '@nestjs/common';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

const DEFAULT_METRICS_PORT = 9464;
const MAX_PORT = 65_535;

/** Where metrics are served, or `null` when SAMPLE_METRICS_PORT is `off`. */
export function metricsPort(env: NodeJS.ProcessEnv = process.env): number | null {
  const raw = env.SAMPLE_METRICS_PORT;
  if (raw === undefined || raw === '') return DEFAULT_METRICS_PORT;
  if (raw === 'off') return null;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > MAX_PORT) throw new Error(`SAMPLE_METRICS_PORT must be a port from 0 to ${MAX_PORT} or "off"; got ${JSON.stringify(raw)}`);
  return port;
}

/**
 * Starts the exporter and registers the SDK's meter provider globally.
 * @returns a function that stops both, or `null` when metrics are off (or their port is taken)
 */
export async function startMetrics(env: NodeJS.ProcessEnv = process.env): Promise<(() => Promise<void>) | null> {
  const port = metricsPort(env);
  if (port === null) return null;
  const host = env.SAMPLE_METRICS_HOST || '127.0.0.1';
  let exporter: PrometheusExporter;
  try {
    exporter = await new Promise<PrometheusExporter>((resolve, reject) => {
      const created: PrometheusExporter = new PrometheusExporter({ port, host }, (error) => (error ? reject(error) : resolve(created)));
    });
  } catch (error) {
    // Metrics are a convenience of the sample: a port in use (another sample) does not stop the chat.
    new Logger('Sample').warn(`metrics not served: cannot listen on ${host}:${port}: ${(error as Error).message}; set SAMPLE_METRICS_PORT (or off)`);
    return null;
  }
  const provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  new Logger('Sample').log(`metrics at http://${host}:${port}/metrics (Prometheus text)`);
  return async () => {
    await provider.shutdown();
  };
}
