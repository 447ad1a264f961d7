import { ROOT_CONTEXT, TraceFlags, type Tracer, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTelemetry, stopTelemetry } from '../lib/telemetry.ts';

// DESIGN §7: unset, sampling is parent-based at 10 %. The other tracing tests sample every span
// (always_on), so the default is checked here, in this file's own process.
describe('the default sampler', () => {
  const saved = process.env['OTEL_TRACES_SAMPLER'];
  let tracer: Tracer;

  beforeAll(() => {
    delete process.env['OTEL_TRACES_SAMPLER'];
    tracer = startTelemetry('sampling-test', { exporter: new InMemorySpanExporter() });
  });
  afterAll(async () => {
    await stopTelemetry();
    if (saved !== undefined) process.env['OTEL_TRACES_SAMPLER'] = saved;
  });

  it('samples about one request in ten, and gives every span real ids for the audit records', () => {
    let sampled = 0;
    const traceIds = new Set<string>();
    for (let i = 0; i < 4_000; i++) {
      const span = tracer.startSpan('gateway.request', {}, ROOT_CONTEXT);
      if (span.isRecording()) sampled++;
      const { traceId, spanId } = span.spanContext();
      expect(traceId).toMatch(/^(?!0{32})[0-9a-f]{32}$/);
      expect(spanId).toMatch(/^(?!0{16})[0-9a-f]{16}$/);
      traceIds.add(traceId);
      span.end();
    }
    expect(traceIds.size).toBe(4_000);
    // Binomial(4000, 0.1): mean 400, standard deviation 19; these bounds are six of them away.
    expect(sampled).toBeGreaterThan(286);
    expect(sampled).toBeLessThan(514);
  });

  it("follows the sampled flag of the caller it continues, as a node follows the gateway's call", () => {
    const from = (traceFlags: TraceFlags) =>
      trace.setSpanContext(ROOT_CONTEXT, { traceId: 'a1'.repeat(16), spanId: 'b2'.repeat(8), traceFlags, isRemote: true });
    for (let i = 0; i < 20; i++) {
      expect(tracer.startSpan('node.request', {}, from(TraceFlags.SAMPLED)).isRecording()).toBe(true);
      expect(tracer.startSpan('node.request', {}, from(TraceFlags.NONE)).isRecording()).toBe(false);
    }
  });
});
