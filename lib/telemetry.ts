import { DiagConsoleLogger, DiagLogLevel, type Tracer, diag, propagation, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { z } from 'zod';
import { parseConfig, settings } from './config.ts';
import { TimeOrderedIdGenerator } from './trace-ids.ts';

export const VERSION = '0.1.0';

let provider: NodeTracerProvider | null = null;

/**
 * The standard OTEL_* settings the SDK reads, checked as every other setting is: left to the SDK,
 * a misspelt sampler samples everything and an unparsable endpoint sends to localhost:4318, with
 * no more than a diagnostic nobody reads.
 */
const endpoint = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const otelSettings = z.object({
  OTEL_TRACES_SAMPLER: z
    .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])
    .optional(),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number({ error: 'must be a ratio from 0 to 1' }).min(0).max(1).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: endpoint.optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint.optional(),
});
const OTEL_NAMES = Object.keys(otelSettings.shape) as (keyof typeof otelSettings.shape)[];

/** Stops with a ConfigError naming the OTEL_* setting the SDK would misread. */
export function checkTelemetrySettings(env: NodeJS.ProcessEnv): void {
  parseConfig(otelSettings, settings(env, OTEL_NAMES), 'the environment');
}

/**
 * Registers the process's tracer provider. A provider is always registered, even when nothing is
 * exported, because audit records take their trace and span ids from real spans. Sampling follows
 * the standard OTEL_TRACES_SAMPLER settings; unset, it is parent-based at 10 % (DESIGN §7).
 * Spans leave only through OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (or an exporter is given).
 */
export function startTelemetry(component: string, options: { exporter?: SpanExporter; env?: NodeJS.ProcessEnv } = {}): Tracer {
  const env = options.env ?? process.env;
  if (!provider) {
    checkTelemetrySettings(env);
    // The SDK's own warnings (an export that failed, spans dropped from a full queue) reach stderr;
    // they name endpoints and counts, never a request's data.
    diag.setLogger(new DiagConsoleLogger(), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
    const spanProcessors: SpanProcessor[] = [];
    if (options.exporter) spanProcessors.push(new BatchSpanProcessor(options.exporter, { scheduledDelayMillis: 200 }));
    else if (env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) {
      spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
    }
    provider = new NodeTracerProvider({
      resource: resourceFromAttributes({ 'service.name': `soh-${component}`, 'service.version': VERSION }),
      spanProcessors,
      idGenerator: new TimeOrderedIdGenerator(),
      ...(env['OTEL_TRACES_SAMPLER'] ? {} : { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.1) }) }),
    });
    // No context manager: every span names its parent explicitly (the request's span, kept in the
    // request state), so nothing reads an ambient context. On Node 20 the default
    // AsyncLocalStorage manager would put an async hook on every promise of every request.
    provider.register({ contextManager: null });
  }
  return trace.getTracer(`soh-${component}`, VERSION);
}

/** Exports what is still queued and unregisters the provider, so that a later start registers anew. */
export async function stopTelemetry(): Promise<void> {
  const stopping = provider;
  provider = null;
  trace.disable();
  propagation.disable();
  await stopping?.shutdown();
}
