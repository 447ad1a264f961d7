import { type Tracer, trace } from '@opentelemetry/api';
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
import { TimeOrderedIdGenerator } from './trace-ids.ts';

export const VERSION = '0.1.0';

let provider: NodeTracerProvider | null = null;

/**
 * Registers the process's tracer provider. A provider is always registered, even when nothing is
 * exported, because audit records take their trace and span ids from real spans. Sampling follows
 * the standard OTEL_TRACES_SAMPLER settings; unset, it is parent-based at 10 % (DESIGN §7).
 * Spans leave only through OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (or an exporter is given).
 */
export function startTelemetry(component: string, options: { exporter?: SpanExporter; env?: NodeJS.ProcessEnv } = {}): Tracer {
  const env = options.env ?? process.env;
  if (!provider) {
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

export async function stopTelemetry(): Promise<void> {
  await provider?.shutdown();
  provider = null;
}
