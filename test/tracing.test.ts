import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TimeOrderedIdGenerator } from '../lib/trace-ids.ts';
import { AREA, AT, PERSONS } from './support/fixtures.ts';
import { type Federation, type TracedFederation, startTracedFederation } from './support/federation.ts';
import { type OtlpSink, eventually } from './support/otlp-sink.ts';

const HIT_CHECK = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { subjectRef complete anyHit partners { partner status } } }`;
const ACTIVE_BANS = `query Bans($bsn: String!, $at: DateTime, $location: GeoPointInput) {
  activeBans(subject: { bsn: $bsn }, at: $at, location: $location) { complete underActiveBan bans { id violatedAt } partners { partner status } } }`;

const CONTACT_BANNED = `query Contact($bsn: String!, $other: String!, $at: DateTime) {
  contactBanned(subject: { bsn: $bsn }, counterpart: { bsn: $other }, at: $at) { banned partners { partner status } } }`;

const ALL_NODES = ['politie', 'veilig-thuis', 'om', 'reclassering'] as const;
const BAN_NODES = ['politie', 'om', 'reclassering'] as const;

/** OTLP/JSON span kinds (the API's SpanKind + 1). */
const OTLP_SERVER = 2;

interface AuditRow {
  type: string;
  trace_id: string;
  span_id?: string;
  parent_span_id?: string | null;
  name?: string;
  component?: string;
  resource?: { component: string };
  foreign_operation?: { trace_id: string; span_id: string; entity: string } | null;
  attributes?: Record<string, unknown>;
}

/** Every audit record a component wrote, read-only from its log. */
function auditRecords(file: string): AuditRow[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT body FROM records ORDER BY seq').all() as { body: string }[]).map((row) => JSON.parse(row.body));
  } finally {
    db.close();
  }
}

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId ?? '';
const idsOf = (span: ReadableSpan) => span.spanContext();

describe('tracing across the gateway and the node processes', () => {
  let traced: TracedFederation;
  let federation: Federation;
  let sink: OtlpSink;
  const exporter = new InMemorySpanExporter();
  let vtToken: string;
  let policeToken: string;

  beforeAll(async () => {
    traced = await startTracedFederation(exporter);
    ({ federation, sink } = traced);
    vtToken = await federation.issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1' });
    policeToken = await federation.issuer.token();
  });

  afterAll(async () => {
    await traced?.stop();
  });

  /**
   * Sends one request and waits until its whole trace has been exported: the gateway's spans
   * (in-memory) and, from every node asked, its server span and its resolution span (OTLP sink).
   */
  async function tracedRequest(
    token: string,
    query: string,
    variables: Record<string, unknown>,
    nodes: readonly string[],
    headers: Record<string, string> = {},
  ) {
    const gatewayBefore = exporter.getFinishedSpans().length;
    const sinkBefore = sink.spans.length;
    const response = await federation.query(token, query, variables, headers);
    expect(response.status).toBe(200);
    expect(response.body.errors).toBeUndefined();

    const root = await eventually(
      () => exporter.getFinishedSpans().slice(gatewayBefore).find((span) => span.name === 'gateway.request'),
      'the gateway request span',
    );
    const traceId = idsOf(root).traceId;
    const gatewaySpans = await eventually(() => {
      const spans = exporter.getFinishedSpans().slice(gatewayBefore);
      const calls = spans.filter((span) => span.name.startsWith('node.call '));
      return calls.length >= nodes.length ? spans : undefined;
    }, 'the gateway node-call spans');
    // Both spans of every node: a node's server span ends after its resolution span and may be
    // exported in a later batch, and left behind it would land in the next test's window.
    const nodeSpans = await eventually(() => {
      const spans = sink.spans.slice(sinkBefore).filter((span) => span.traceId === traceId);
      const resolutions = spans.filter((span) => span.name === 'node.records');
      const servers = spans.filter((span) => span.name.startsWith('node.request '));
      return resolutions.length >= nodes.length && servers.length >= nodes.length ? sink.spans.slice(sinkBefore) : undefined;
    }, 'every node span of the trace');
    return { response, root, traceId, gatewaySpans, nodeSpans };
  }

  /** The connected-trace checks shared by every operation. */
  function expectOneConnectedTrace(
    trace: Awaited<ReturnType<typeof tracedRequest>>,
    operation: string,
    nodes: readonly string[],
  ) {
    const { root, traceId, gatewaySpans, nodeSpans } = trace;
    // One trace: every span this request produced, at the gateway and at every node, carries its id.
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(gatewaySpans.map((span) => idsOf(span).traceId))).toEqual(new Set([traceId]));
    expect(new Set(nodeSpans.map((span) => span.traceId))).toEqual(new Set([traceId]));

    // The gateway request span is the root.
    expect(root.kind).toBe(SpanKind.SERVER);
    expect(root.parentSpanContext).toBeUndefined();
    expect(gatewaySpans.filter((span) => span.name === 'gateway.request')).toHaveLength(1);

    // The operation span hangs under the request span.
    const operationSpans = gatewaySpans.filter((span) => span.name === operation);
    expect(operationSpans).toHaveLength(1);
    const operationSpan = operationSpans[0]!;
    expect(parentOf(operationSpan)).toBe(idsOf(root).spanId);

    // Exactly one node call per node asked (batched delegation), under the request span (a batch may
    // serve several root fields), and none to the others.
    const calls = gatewaySpans.filter((span) => span.name.startsWith('node.call '));
    expect(calls.map((span) => span.name).sort()).toEqual(nodes.map((node) => `node.call ${node}`).sort());
    const gatewayIds = new Set(gatewaySpans.map((span) => idsOf(span).spanId));
    for (const call of calls) {
      expect(call.kind).toBe(SpanKind.CLIENT);
      expect(gatewayIds.has(parentOf(call))).toBe(true);
      expect(parentOf(call)).toBe(idsOf(root).spanId);
    }

    // Each node: its server span is the child of the gateway's call to it (traceparent propagated),
    // and its resolution span is the child of its server span.
    for (const node of nodes) {
      const call = calls.find((span) => span.name === `node.call ${node}`)!;
      const servers = nodeSpans.filter((span) => span.service === `soh-${node}` && span.name === `node.request ${node}`);
      expect(servers, node).toHaveLength(1);
      const server = servers[0]!;
      expect(server.kind).toBe(OTLP_SERVER);
      expect(server.parentSpanId, `${node} server span's parent`).toBe(idsOf(call).spanId);
      const resolutions = nodeSpans.filter((span) => span.service === `soh-${node}` && span.name === 'node.records');
      expect(resolutions, node).toHaveLength(1);
      expect(resolutions[0]!.parentSpanId).toBe(server.spanId);
    }
    // Nodes not asked produced nothing for this request.
    const asked = new Set(nodes.map((node) => `soh-${node}`));
    expect(nodeSpans.filter((span) => !asked.has(span.service))).toEqual([]);

    // Every span id is distinct, and every parent is a span of this trace (or none, for the root).
    const allIds = [...gatewaySpans.map((span) => idsOf(span).spanId), ...nodeSpans.map((span) => span.spanId)];
    expect(new Set(allIds).size).toBe(allIds.length);
    const known = new Set(allIds);
    for (const span of gatewaySpans) if (span !== root) expect(known.has(parentOf(span)), span.name).toBe(true);
    for (const span of nodeSpans) expect(known.has(span.parentSpanId), span.name).toBe(true);
  }

  it('exports node spans as OTLP/HTTP JSON that the collector accepts', async () => {
    await tracedRequest(vtToken, HIT_CHECK, { bsn: PERSONS.vtOnly }, ALL_NODES);
    expect(sink.rejected).toEqual([]);
    expect(sink.bodies.length).toBeGreaterThan(0);
    expect(new Set(sink.spans.map((span) => span.service))).toEqual(new Set(ALL_NODES.map((node) => `soh-${node}`)));
  });

  it('links a hitCheck into one trace: request, operation, one call per node, each node\'s server and resolution spans', async () => {
    const trace = await tracedRequest(vtToken, HIT_CHECK, { bsn: PERSONS.subject }, ALL_NODES);
    expect(trace.response.body.data!.hitCheck.complete).toBe(true);
    expectOneConnectedTrace(trace, 'hitCheck', ALL_NODES);
  });

  it('links an activeBans check into one trace, asking only the partners that hold bans', async () => {
    const trace = await tracedRequest(policeToken, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026, location: AREA.inside }, BAN_NODES);
    expect(trace.response.body.data!.activeBans.underActiveBan).toBe(true);
    expectOneConnectedTrace(trace, 'activeBans', BAN_NODES);
  });

  it('has a purpose-check span in the request\'s trace, under the request span', async () => {
    const trace = await tracedRequest(vtToken, HIT_CHECK, { bsn: PERSONS.subject }, ALL_NODES);
    const purpose = trace.gatewaySpans.filter((span) => /purpose/i.test(span.name));
    const names = trace.gatewaySpans.map((span) => span.name).join(', ');
    expect(purpose.map((span) => span.name), `a span for the purpose decision (DESIGN §7) among: ${names}`).toHaveLength(1);
    expect(idsOf(purpose[0]!).traceId).toBe(trace.traceId);
    expect(parentOf(purpose[0]!)).toBe(idsOf(trace.root).spanId);
  });

  it('writes the trace and span ids of these spans into every component\'s processing records', async () => {
    const trace = await tracedRequest(vtToken, HIT_CHECK, { bsn: PERSONS.subject }, ALL_NODES);
    const operationSpan = trace.gatewaySpans.find((span) => span.name === 'hitCheck')!;
    const gatewayRecords = auditRecords(join(federation.dataDir, 'gateway', 'audit.db')).filter((r) => r.trace_id === trace.traceId);
    expect(gatewayRecords.map((r) => r.type).sort()).toEqual(['access', 'processing']);
    const processing = gatewayRecords.find((r) => r.type === 'processing')!;
    expect(processing).toMatchObject({ name: 'hitCheck', span_id: idsOf(operationSpan).spanId, parent_span_id: idsOf(trace.root).spanId });
    for (const node of ALL_NODES) {
      const records = auditRecords(join(federation.dataDir, 'nodes', node, 'audit.db')).filter((r) => r.trace_id === trace.traceId);
      const resolution = trace.nodeSpans.find((span) => span.service === `soh-${node}` && span.name === 'node.records')!;
      const server = trace.nodeSpans.find((span) => span.service === `soh-${node}` && span.name === `node.request ${node}`)!;
      expect(records.map((r) => r.type).sort(), node).toEqual(['access', 'processing']);
      expect(records.find((r) => r.type === 'processing'), node).toMatchObject({
        name: 'node.records',
        span_id: resolution.spanId,
        parent_span_id: server.spanId,
      });
    }
  });

  it.each([
    ['sampled', '01'],
    ['not sampled', '00'],
  ])("starts a fresh trace when the caller sends a %s traceparent; the caller's ids land only in foreign_operation", async (_name, flags) => {
    const callerTrace = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const trace = await tracedRequest(vtToken, HIT_CHECK, { bsn: PERSONS.subject }, ALL_NODES, {
      traceparent: `00-${callerTrace}-${callerSpan}-${flags}`,
      // Whatever a caller writes in a header of its own never reaches a record.
      'x-soh-caller-entity': `bsn ${PERSONS.subject} / jan.jansen@example.org`,
    });
    expect(trace.traceId).not.toBe(callerTrace);
    expectOneConnectedTrace(trace, 'hitCheck', ALL_NODES);

    // No span of the request points at the caller's trace or span, in ids or attributes.
    const spanText = JSON.stringify([
      ...trace.gatewaySpans.map((span) => ({ ids: span.spanContext(), parent: span.parentSpanContext, attributes: span.attributes, links: span.links, events: span.events })),
      ...trace.nodeSpans,
    ]);
    expect(spanText).not.toContain(callerTrace);
    expect(spanText).not.toContain(callerSpan);
    expect(JSON.stringify(trace.response.body)).not.toContain(callerTrace);
    for (const [, value] of trace.response.headers) expect(value).not.toContain(callerTrace);

    // The gateway's records of this request carry the gateway's trace id; the caller's ids appear
    // only as the foreign operation of its processing records.
    const gatewayRecords = auditRecords(join(federation.dataDir, 'gateway', 'audit.db'));
    const mentioning = gatewayRecords.filter((r) => JSON.stringify(r).includes(callerTrace));
    expect(mentioning.length).toBeGreaterThan(0);
    for (const record of mentioning) {
      expect(record.type).toBe('processing');
      expect(record.trace_id).toBe(trace.traceId);
      // The entity is the caller's organisation as its token vouches for it.
      expect(record.foreign_operation).toEqual({ trace_id: callerTrace, span_id: callerSpan, entity: 'veilig-thuis-rotterdam-rijnmond' });
      const { foreign_operation: _foreign, ...rest } = record;
      expect(JSON.stringify(rest)).not.toContain(callerTrace);
      expect(JSON.stringify(rest)).not.toContain(callerSpan);
    }
    expect(gatewayRecords.filter((r) => r.trace_id === trace.traceId).map((r) => r.type).sort()).toEqual(['access', 'processing']);
    for (const record of gatewayRecords) expect(JSON.stringify(record).includes(callerSpan)).toBe(JSON.stringify(record).includes(callerTrace));
    // The nodes never learn the caller's trace.
    for (const node of ALL_NODES) {
      const text = JSON.stringify(auditRecords(join(federation.dataDir, 'nodes', node, 'audit.db')));
      expect(text).not.toContain(callerTrace);
      expect(text).not.toContain(callerSpan);
    }
  });

  it.each([
    ['activeBans', ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026 }, 1],
    ['contactBanned with a protected counterpart', CONTACT_BANNED, { bsn: PERSONS.subject, other: PERSONS.victim, at: AT.may2026 }, 2],
    ['contactBanned with a counterpart no ban protects', CONTACT_BANNED, { bsn: PERSONS.subject, other: PERSONS.unrelated, at: AT.may2026 }, 2],
  ])('gives each processing record of %s the status per partner that the answer gave', async (operation, query, variables, subjects) => {
    const trace = await tracedRequest(policeToken, query, variables, BAN_NODES);
    const answer = Object.values(trace.response.body.data!)[0] as { partners: { partner: string; status: string }[] };
    const statuses = Object.fromEntries(answer.partners.map(({ partner, status }) => [partner, status]));
    const processing = auditRecords(join(federation.dataDir, 'gateway', 'audit.db')).filter((r) => r.trace_id === trace.traceId && r.type === 'processing');
    expect(processing).toHaveLength(subjects);
    for (const record of processing) expect(record.attributes!['soh.partners'], operation).toEqual(statuses);
  });

  it('gives every request its own trace', async () => {
    const first = await tracedRequest(vtToken, HIT_CHECK, { bsn: PERSONS.unknown }, ALL_NODES);
    const second = await tracedRequest(vtToken, HIT_CHECK, { bsn: PERSONS.unknown }, ALL_NODES);
    expect(first.traceId).not.toBe(second.traceId);
  });

  it('starts every trace id with the time of its request and ends it with random bits, so that audit logs index their records at the end', async () => {
    const millis = (traceId: string) => Number.parseInt(traceId.slice(0, 12), 16);
    const before = Date.now();
    const first = await tracedRequest(vtToken, HIT_CHECK, { bsn: PERSONS.unknown }, ALL_NODES);
    const second = await tracedRequest(vtToken, HIT_CHECK, { bsn: PERSONS.unknown }, ALL_NODES);
    const after = Date.now();
    for (const { traceId } of [first, second]) {
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(millis(traceId)).toBeGreaterThanOrEqual(before);
      expect(millis(traceId)).toBeLessThanOrEqual(after);
    }
    expect(millis(second.traceId)).toBeGreaterThanOrEqual(millis(first.traceId));
    expect(first.traceId.slice(12)).not.toBe(second.traceId.slice(12));
    // The nodes index their records under the same ids, in the same order.
    for (const node of ALL_NODES) {
      const traces = auditRecords(join(federation.dataDir, 'nodes', node, 'audit.db')).map((record) => record.trace_id);
      expect(traces.indexOf(second.traceId), node).toBeGreaterThan(traces.indexOf(first.traceId));
      expect(traces.indexOf(first.traceId), node).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('trace ids', () => {
  it('put the milliseconds first, as 12 hex digits, and 80 random bits after them; span ids stay random', () => {
    const ids = new TimeOrderedIdGenerator(() => 0x18f3a2b4c5d);
    const first = ids.generateTraceId();
    const second = ids.generateTraceId();
    expect(first).toMatch(/^018f3a2b4c5d[0-9a-f]{20}$/);
    expect(second.slice(0, 12)).toBe('018f3a2b4c5d');
    expect(first.slice(12)).not.toBe(second.slice(12));
    expect(ids.generateSpanId()).toMatch(/^[0-9a-f]{16}$/);
    expect(ids.generateSpanId()).not.toBe(ids.generateSpanId());
  });
});
