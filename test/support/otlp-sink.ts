import { createServer, type IncomingMessage, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';

/**
 * A minimal OTLP/HTTP collector for tests: accepts `POST /v1/traces` with the JSON encoding the
 * OpenTelemetry JS exporter sends (ids as hex; base64 ids, as the protobuf-JSON mapping has them,
 * are accepted too) and keeps every span, flattened, together with the raw request bodies.
 */
export interface SinkSpan {
  name: string;
  traceId: string;
  spanId: string;
  /** Empty string for a root span. */
  parentSpanId: string;
  kind: number | undefined;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  /** The resource's `service.name`, e.g. `soh-politie`. */
  service: string;
}

export interface OtlpSink {
  /** The value for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  endpoint: string;
  spans: SinkSpan[];
  /** Every request body received, decoded to text: what left the processes, byte for byte. */
  bodies: string[];
  /** Requests that were not valid OTLP/JSON trace exports (path, content type or body). */
  rejected: string[];
  close(): Promise<void>;
}

interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
  bytesValue?: string;
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}

function anyValue(value: OtlpAnyValue | undefined): unknown {
  if (!value) return null;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(anyValue);
  if (value.kvlistValue) return attributes(value.kvlistValue.values);
  if (value.bytesValue !== undefined) return value.bytesValue;
  return null;
}

function attributes(list: OtlpKeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

/** An OTLP id as lower-case hex, whether it came as hex (OTLP/JSON) or base64 (proto3 JSON mapping). */
export function otlpId(value: string | undefined, bytes: 8 | 16): string {
  if (!value) return '';
  if (value.length === bytes * 2 && /^[0-9a-fA-F]+$/.test(value)) return value.toLowerCase();
  const decoded = Buffer.from(value, 'base64');
  if (decoded.length === bytes) return decoded.toString('hex');
  throw new Error(`not an OTLP ${bytes}-byte id: ${value}`);
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: {
      spans?: {
        name: string;
        traceId?: string;
        spanId?: string;
        parentSpanId?: string;
        kind?: number;
        attributes?: OtlpKeyValue[];
        events?: { name: string; attributes?: OtlpKeyValue[] }[];
      }[];
    }[];
  }[];
}

export async function startOtlpSink(): Promise<OtlpSink> {
  const spans: SinkSpan[] = [];
  const bodies: string[] = [];
  const rejected: string[] = [];

  const server: Server = createServer(async (request, response) => {
    try {
      let body = await readBody(request);
      if (request.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const text = body.toString('utf8');
      bodies.push(text);
      const type = request.headers['content-type'] ?? '';
      if (request.method !== 'POST' || request.url !== '/v1/traces' || !type.startsWith('application/json')) {
        rejected.push(`${request.method} ${request.url} (${type})`);
        response.writeHead(415, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      const payload = JSON.parse(text) as ExportRequest;
      for (const resourceSpans of payload.resourceSpans ?? []) {
        const resource = attributes(resourceSpans.resource?.attributes);
        for (const scope of resourceSpans.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            spans.push({
              name: span.name,
              traceId: otlpId(span.traceId, 16),
              spanId: otlpId(span.spanId, 8),
              parentSpanId: otlpId(span.parentSpanId, 8),
              kind: span.kind,
              attributes: attributes(span.attributes),
              events: (span.events ?? []).map((event) => ({ name: event.name, attributes: attributes(event.attributes) })),
              service: String(resource['service.name'] ?? ''),
            });
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } catch (error) {
      rejected.push(`unreadable export: ${(error as Error).message}`);
      response.writeHead(400, { 'content-type': 'application/json' }).end('{}');
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    bodies,
    rejected,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
