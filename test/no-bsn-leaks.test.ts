import { format } from 'node:util';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { type ProxyTracerProvider, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { NODE_IDS } from '../lib/partners.ts';
import { ALL_BSNS, AREA, AT, PERSONS } from './support/fixtures.ts';
import { type Federation, type TracedFederation, startTracedFederation } from './support/federation.ts';
import { type OtlpSink, eventually } from './support/otlp-sink.ts';

/**
 * Every byte the node processes write to stdout and stderr, from their first line: each spawned
 * child's streams are tapped the moment it is created, before the harness reads them.
 */
const spawned = vi.hoisted(() => ({
  outputs: [] as { command: string; stream: 'stdout' | 'stderr'; text: string[] }[],
}));

vi.mock('node:child_process', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:child_process')>();
  const spawn = ((...args: Parameters<typeof actual.spawn>) => {
    const child = actual.spawn(...args);
    const command = Array.isArray(args[1]) ? args[1].slice(1).join(' ') : String(args[0]);
    for (const stream of ['stdout', 'stderr'] as const) {
      const readable = child[stream];
      if (!readable) continue;
      const entry = { command, stream, text: [] as string[] };
      spawned.outputs.push(entry);
      readable.on('data', (chunk: Buffer | string) => entry.text.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8')));
    }
    return child;
  }) as typeof actual.spawn;
  return { ...actual, spawn, default: { ...actual, spawn } };
});

const HIT_CHECK = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) {
  subjectRef complete anyHit partners { partner status contact { organisation unit phone email } } } }`;
const HIT_STATUS = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { subjectRef complete anyHit partners { partner status } } }`;
const ACTIVE_BANS = `query Bans($bsn: String!, $at: DateTime, $location: GeoPointInput) {
  activeBans(subject: { bsn: $bsn }, at: $at, location: $location) {
    subjectRef complete underActiveBan partners { partner status }
    bans { id kind legalBasis imposedBy reportedBy validFrom validUntil conditions electronicMonitoring victimDevice
           violatedAt protectedPersonRefs area { description municipality } notify { organisation unit phone } } } }`;
const CONTACT_BANNED = `query Contact($bsn: String!, $other: String!, $at: DateTime) {
  contactBanned(subject: { bsn: $bsn }, counterpart: { bsn: $other }, at: $at) { complete banned banIds partners { partner status } } }`;
const ACCESS_LOG = `query Log($filter: AccessLogFilter!) { accessLog(filter: $filter, first: 100) {
  pageInfo { hasNextPage endCursor }
  edges { cursor node { traceId time requester { org sub roles } purpose processingActivity legalBasis caseRef operation decision outcome
    partners { partner status }
    records { component name traceId spanId parentSpanId startTime endTime statusCode attributes chainValid } } } } }`;

/** Invalid BSNs the scenario sends: the gateway must not echo them either. */
const INVALID_BSNS = ['999998620', `${PERSONS.subject.slice(0, 8)}${(Number(PERSONS.subject[8]) + 1) % 10}`];

/** The coordinates of the ban area and of the locations asked about, as they would appear in text. */
const COORDINATES = [AREA.center, AREA.inside, AREA.outside].flatMap((point) => [point.lat, point.lon]);
const coordinatePattern = (value: number) => new RegExp(`(?<![0-9])${String(value).replace('.', '\\.')}(?![0-9])`);

/** A double as SQLite stores a REAL: eight bytes, big-endian. */
function realBytes(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleBE(value);
  return bytes;
}

interface Finding {
  where: string;
  what: string;
}

/** Every fixture BSN, invalid BSN sent, and ban-area or asked-for coordinate found in `text`. */
function findInText(where: string, text: string): Finding[] {
  const findings: Finding[] = [];
  for (const bsn of ALL_BSNS) if (text.includes(bsn)) findings.push({ where, what: `BSN ${bsn}` });
  for (const bsn of INVALID_BSNS) if (text.includes(bsn)) findings.push({ where, what: `invalid BSN ${bsn}` });
  for (const value of new Set(COORDINATES)) if (coordinatePattern(value).test(text)) findings.push({ where, what: `coordinate ${value}` });
  return findings;
}

/** The same for a raw file: as text (UTF-8 and UTF-16), and coordinates as SQLite REALs. */
function findInBytes(where: string, bytes: Buffer): Finding[] {
  const findings = [
    ...findInText(where, bytes.toString('latin1')),
    ...findInText(`${where} (UTF-16)`, bytes.toString('utf16le')),
    ...findInText(`${where} (UTF-16, odd offset)`, bytes.subarray(1).toString('utf16le')),
  ];
  for (const value of new Set(COORDINATES)) {
    if (bytes.includes(realBytes(value))) findings.push({ where, what: `coordinate ${value} as a REAL` });
  }
  return findings;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** A gateway span as plain data: everything an exporter would send. */
function spanData(span: ReadableSpan) {
  return {
    name: span.name,
    kind: span.kind,
    context: span.spanContext(),
    parent: span.parentSpanContext,
    attributes: span.attributes,
    events: span.events,
    links: span.links,
    status: span.status,
    resource: span.resource.attributes,
    scope: span.instrumentationScope,
  };
}

interface Exchange {
  label: string;
  /** A request whose malformed input is echoed by GraphQL itself, kept apart so a leak there is named. */
  probe: boolean;
  status: number;
  headers: [string, string][];
  body: string;
}

describe('no BSN or ban location anywhere: logs, spans, audit files, responses', () => {
  let traced: TracedFederation;
  let federation: Federation;
  let sink: OtlpSink;
  const exporter = new InMemorySpanExporter();
  const exchanges: Exchange[] = [];
  const gatewayOutput: string[] = [];
  const restoreWrites: (() => void)[] = [];
  let scannedFiles: string[] = [];
  const fileFindings: Finding[] = [];

  /**
   * The gateway's own output: it runs in this process, so this process's stdout and stderr, and
   * its console, which vitest takes over in a worker and passes on without those streams.
   */
  function teeOwnOutput() {
    for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      const original = console[method];
      console[method] = (...args: unknown[]) => {
        gatewayOutput.push(`${format(...args)}\n`);
        original.apply(console, args);
      };
      restoreWrites.push(() => (console[method] = original));
    }
    for (const stream of [process.stdout, process.stderr]) {
      const original = stream.write;
      stream.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
        gatewayOutput.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
        return (original as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
      } as typeof stream.write;
      restoreWrites.push(() => (stream.write = original));
    }
  }

  async function send(
    label: string,
    init: { token?: string | null; query?: string; variables?: unknown; method?: 'GET' | 'POST'; path?: string; headers?: Record<string, string> },
    probe = false,
  ): Promise<Exchange> {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...init.headers };
    const response = await fetch(`${federation.gatewayUrl}${init.path ?? '/graphql'}`, {
      method: init.method ?? 'POST',
      headers,
      ...(init.method === 'GET' ? {} : { body: JSON.stringify({ query: init.query, variables: init.variables }) }),
    });
    const exchange: Exchange = { label, probe, status: response.status, headers: [...response.headers], body: await response.text() };
    exchanges.push(exchange);
    return exchange;
  }

  /** Waits until every node the gateway reached has exported the server span of that call. */
  async function nodeSpansExported(exclude: ReadonlySet<string> = new Set()) {
    const provider = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate() as unknown as { forceFlush(): Promise<void> };
    await provider.forceFlush();
    const answered = exporter
      .getFinishedSpans()
      .filter((span) => span.name.startsWith('node.call ') && span.status.code !== 2 && !exclude.has(span.name.slice('node.call '.length)));
    expect(answered.length).toBeGreaterThan(0);
    await eventually(() => {
      const parents = new Set(sink.spans.map((span) => span.parentSpanId));
      return answered.every((call) => parents.has(call.spanContext().spanId)) ? true : undefined;
    }, 'the node spans of every answered call');
  }

  beforeAll(async () => {
    teeOwnOutput();
    traced = await startTracedFederation(exporter);
    ({ federation, sink } = traced);
    const { issuer } = federation;
    const vt = await issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1' });
    const police = await issuer.token();
    const officer = await issuer.token({ org: 'politie', sub: 'fg-politie', roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined });
    const vtOfficer = await issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', sub: 'fg-vt', roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined });

    // Phase 1: every partner up.
    for (const bsn of [PERSONS.subject, PERSONS.vtOnly, PERSONS.unknown, PERSONS.victim]) {
      expect((await send(`hitCheck ${bsn === PERSONS.subject ? 'subject' : 'other'}`, { token: vt, query: HIT_CHECK, variables: { bsn } })).status).toBe(200);
    }
    expect((await send('hitCheck statuses (police)', { token: police, query: HIT_STATUS, variables: { bsn: PERSONS.subject } })).status).toBe(200);
    for (const [name, location] of [['inside', AREA.inside], ['outside', AREA.outside], ['at the centre', AREA.center], ['none', null]] as const) {
      const at = name === 'none' ? AT.y2028 : AT.may2026;
      const result = await send(`activeBans location ${name}`, { token: police, query: ACTIVE_BANS, variables: { bsn: PERSONS.subject, at, location } });
      expect(result.status).toBe(200);
    }
    expect(JSON.parse(exchanges.at(-4)!.body).data.activeBans.bans.some((ban: { violatedAt: boolean }) => ban.violatedAt)).toBe(true);
    for (const other of [PERSONS.victim, PERSONS.unrelated]) {
      expect((await send('contactBanned', { token: police, query: CONTACT_BANNED, variables: { bsn: PERSONS.subject, other, at: AT.may2026 } })).status).toBe(200);
    }
    // Inline literals instead of variables: the document itself holds the BSN.
    expect((await send('hitCheck inline literal', { token: vt, query: `{ hitCheck(subject: { bsn: "${PERSONS.subject}" }) { subjectRef anyHit } }` })).status).toBe(200);

    // Denied: wrong purpose for the field, purpose not allowed, no token, untrusted issuer for the org.
    expect((await send('denied: field outside purpose', { token: police, query: HIT_CHECK, variables: { bsn: PERSONS.subject } })).status).toBe(403);
    expect((await send('denied: activeBans under vt-hit-check', { token: vt, query: ACTIVE_BANS, variables: { bsn: PERSONS.subject, location: AREA.inside } })).status).toBe(403);
    const wrongOrg = await issuer.token({ org: 'politie', roles: ['politie-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1' });
    expect((await send('denied: purpose not allowed', { token: wrongOrg, query: HIT_CHECK, variables: { bsn: PERSONS.subject } })).status).toBe(403);
    expect((await send('denied: no token', { token: null, query: HIT_CHECK, variables: { bsn: PERSONS.subject } })).status).toBe(401);
    const untrusted = await federation.politieIssuer.token({ org: 'om', roles: ['om-medewerker'] });
    expect((await send('denied: untrusted issuer', { token: untrusted, query: CONTACT_BANNED, variables: { bsn: PERSONS.subject, other: PERSONS.victim } })).status).toBe(401);
    const noCase = await issuer.token({ case_ref: undefined });
    expect((await send('denied: no case_ref', { token: noCase, query: ACTIVE_BANS, variables: { bsn: PERSONS.subject } })).status).toBe(403);
    expect((await send('denied: GET with the BSN in the URL', {
      method: 'GET',
      token: police,
      path: `/graphql?query=${encodeURIComponent(HIT_STATUS)}&variables=${encodeURIComponent(JSON.stringify({ bsn: PERSONS.subject }))}`,
    })).status).toBeGreaterThanOrEqual(400);

    // Invalid BSNs, alone and next to a valid one.
    for (const bsn of INVALID_BSNS) {
      expect((await send('invalid BSN', { token: vt, query: HIT_CHECK, variables: { bsn } })).status).toBe(400);
    }
    expect((await send('invalid counterpart', { token: police, query: CONTACT_BANNED, variables: { bsn: PERSONS.subject, other: INVALID_BSNS[0] } })).status).toBe(400);
    expect((await send('invalid subject, valid counterpart', { token: police, query: CONTACT_BANNED, variables: { bsn: INVALID_BSNS[1], other: PERSONS.victim } })).status).toBe(400);
    expect((await send('invalid location next to a BSN', { token: police, query: ACTIVE_BANS, variables: { bsn: PERSONS.subject, location: { lat: 91, lon: AREA.center.lon } } })).status).toBe(400);
    expect((await send('invalid accessLog BSN', { token: officer, query: ACCESS_LOG, variables: { filter: { subjectBsn: INVALID_BSNS[0] } } })).status).toBe(400);

    // Malformed inputs that GraphQL itself reports on, quoting the offending value unless masked.
    await send('probe: BSN as a JSON number', { token: vt, query: HIT_CHECK, variables: { bsn: Number(PERSONS.subject) } }, true);
    await send('probe: subject object with an unknown field', {
      token: vt,
      query: `query Hit($subject: SubjectInput!) { hitCheck(subject: $subject) { anyHit } }`,
      variables: { subject: { bsn: PERSONS.subject, name: 'x' } },
    }, true);
    await send('probe: BSN as an Int literal', { token: vt, query: `{ hitCheck(subject: { bsn: ${PERSONS.subject} }) { anyHit } }` }, true);
    await send('probe: unparsable document around a BSN', { token: vt, query: `{ hitCheck(subject: { bsn: "${PERSONS.subject}" } { anyHit } }` }, true);
    expect((await send('a BSN in the operation name', { token: vt, query: `query Check_${PERSONS.subject}($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { anyHit } }`, variables: { bsn: PERSONS.subject } })).status).toBe(200);
    await send('probe: a BSN as a field the schema does not have', { token: vt, query: `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { anyHit x${PERSONS.subject} } }`, variables: { bsn: PERSONS.subject } }, true);
    await send('probe: a location after a key that ends a quote', { token: police, query: ACTIVE_BANS, variables: { bsn: PERSONS.subject, location: { 'note; x': 0, lat: AREA.center.lat, lon: AREA.center.lon } } }, true);
    await send('probe: location as a string', { token: police, query: ACTIVE_BANS, variables: { bsn: PERSONS.subject, location: { lat: String(AREA.center.lat), lon: AREA.center.lon } } }, true);

    // The privacy officers' view, by BSN and by trace.
    for (const [token, bsn] of [[officer, PERSONS.subject], [officer, PERSONS.victim], [vtOfficer, PERSONS.subject], [vtOfficer, PERSONS.vtOnly]] as const) {
      expect((await send('accessLog by subjectBsn', { token, query: ACCESS_LOG, variables: { filter: { subjectBsn: bsn } } })).status).toBe(200);
    }
    const logged = JSON.parse(exchanges.at(-4)!.body);
    expect(logged.data.accessLog.edges.length).toBeGreaterThan(0);
    const traceId = logged.data.accessLog.edges[0].node.traceId;
    expect((await send('accessLog by traceId', { token: officer, query: ACCESS_LOG, variables: { filter: { traceId } } })).status).toBe(200);

    await nodeSpansExported();

    // Phase 2: one partner killed.
    const om = federation.nodes.om.process;
    om.kill('SIGKILL');
    await new Promise((resolve) => om.once('exit', resolve));
    for (const [label, token, query, variables] of [
      ['hitCheck with om down', vt, HIT_CHECK, { bsn: PERSONS.subject }],
      ['activeBans with om down', police, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026, location: AREA.inside }],
      ['contactBanned with om down', police, CONTACT_BANNED, { bsn: PERSONS.subject, other: PERSONS.victim, at: AT.may2026 }],
      ['accessLog with om down', officer, ACCESS_LOG, { filter: { subjectBsn: PERSONS.subject } }],
    ] as const) {
      const result = await send(label, { token, query, variables });
      expect(result.status).toBe(200);
      expect(JSON.parse(result.body).errors?.some((e: { extensions?: { code?: string } }) => e.extensions?.code === 'PARTNER_UNAVAILABLE')).toBe(true);
    }
    await nodeSpansExported(new Set(['om']));

    // Every file under the data directory except the node stores (which hold BSNs by design) and
    // the fixture files the harness imported from, read raw while everything is still running.
    const excluded = (path: string) => {
      const rel = relative(federation.dataDir, path).split(sep);
      return (rel[0] === 'nodes' && /^store\.db(-wal|-shm|-journal)?$/.test(rel[2] ?? '')) || (rel.length === 1 && rel[0]!.endsWith('.ndjson'));
    };
    scannedFiles = filesUnder(federation.dataDir).filter((path) => !excluded(path));
    for (const file of scannedFiles) fileFindings.push(...findInBytes(relative(federation.dataDir, file), readFileSync(file)));
  }, 120_000);

  afterAll(async () => {
    for (const restore of restoreWrites) restore();
    await traced?.stop();
  });

  it('ran the whole scenario: hits, bans, denials, invalid input, a partner down', () => {
    const statuses = new Set(exchanges.map((e) => e.status));
    for (const status of [200, 400, 401, 403]) expect(statuses.has(status), `HTTP ${status}`).toBe(true);
    const hitExchange = exchanges.find((e) => e.label === 'hitCheck subject')!;
    const hit = JSON.parse(hitExchange.body);
    expect(hit.data.hitCheck, hitExchange.body).toMatchObject({ complete: true, anyHit: true });
    const inside = JSON.parse(exchanges.find((e) => e.label === 'activeBans location inside')!.body);
    expect(inside.data.activeBans.bans.length).toBeGreaterThan(0);
    const banned = JSON.parse(exchanges.find((e) => e.label === 'contactBanned')!.body);
    expect(banned.data.contactBanned.banned).toBe(true);
  });

  it('captured every node process from its first line, and nothing in it names a person or a place', () => {
    for (const node of NODE_IDS) {
      // The last start of the node: a start-up that did not come up whole is tried again.
      const stdout = spawned.outputs.filter((o) => o.command === `node ${node}` && o.stream === 'stdout').at(-1);
      expect(stdout, `stdout of node ${node}`).toBeDefined();
      expect(stdout!.text.join('')).toMatch(new RegExp(`^node ${node} listening on http://127\\.0\\.0\\.1:\\d+`));
    }
    const findings = spawned.outputs.flatMap((o) => findInText(`${o.command} ${o.stream}`, o.text.join('')));
    expect(findings).toEqual([]);
  });

  it("keeps the gateway process's own output free of them", () => {
    // The tee sees what the gateway's code prints (else this test could not fail).
    console.error('tee canary');
    expect(gatewayOutput.join('')).toContain('tee canary');
    expect(findInText('gateway stdout/stderr', gatewayOutput.join(''))).toEqual([]);
  });

  it('keeps every gateway span free of them: names, attributes, events, resource', () => {
    const spans = exporter.getFinishedSpans();
    expect(spans.filter((s) => s.name === 'gateway.request').length).toBeGreaterThanOrEqual(exchanges.filter((e) => e.status === 200).length);
    const findings = spans.flatMap((span) => findInText(`gateway span ${span.name}`, JSON.stringify(spanData(span))));
    expect(findings).toEqual([]);
  });

  it('keeps every node span free of them, as exported over OTLP', () => {
    expect(sink.rejected).toEqual([]);
    expect(new Set(sink.spans.map((s) => s.service))).toEqual(new Set(NODE_IDS.map((id) => `soh-${id}`)));
    expect(sink.spans.filter((s) => s.name === 'node.records').length).toBeGreaterThan(10);
    const findings = sink.bodies.flatMap((body, index) => findInText(`OTLP export #${index + 1}`, body));
    expect(findings).toEqual([]);
  });

  it('keeps every audit file, key and log under the data directory free of them (node stores aside)', () => {
    const names = scannedFiles.map((file) => relative(federation.dataDir, file).split(sep).join('/'));
    expect(names).toEqual(expect.arrayContaining(['gateway/audit.db', ...NODE_IDS.map((id) => `nodes/${id}/audit.db`)]));
    expect(names.some((name) => name.startsWith('gateway/keys/'))).toBe(true);
    expect(names.some((name) => /store\.db/.test(name))).toBe(false);
    // The scan does see what it looks for: the node store it skips holds the subject and the area.
    const store = findInBytes('nodes/politie/store.db', readFileSync(join(federation.dataDir, 'nodes', 'politie', 'store.db')));
    expect(store).toEqual(expect.arrayContaining([
      { where: 'nodes/politie/store.db', what: `BSN ${PERSONS.subject}` },
      { where: 'nodes/politie/store.db', what: `coordinate ${AREA.center.lat}` },
    ]));
    expect(fileFindings).toEqual([]);
  });

  it('returns no BSN or location in any response body or header', () => {
    const findings = exchanges
      .filter((e) => !e.probe)
      .flatMap((e) => findInText(`response to "${e.label}" (HTTP ${e.status})`, `${e.body}\n${JSON.stringify(e.headers)}`));
    expect(findings).toEqual([]);
  });

  it('refuses every malformed-input probe as a whole with HTTP 400, whatever the Accept header (DESIGN §8)', () => {
    const probes = exchanges.filter((e) => e.probe);
    expect(probes.length).toBe(7);
    const statuses = probes.map((probe) => ({ probe: probe.label, status: probe.status, code: JSON.parse(probe.body).errors?.[0]?.extensions?.code }));
    expect(statuses).toEqual(probes.map((probe) => ({ probe: probe.label, status: 400, code: expect.any(String) })));
  });

  it('does not echo a BSN or location from malformed input in an error message', () => {
    const probes = exchanges.filter((e) => e.probe);
    expect(probes.length).toBe(7);
    const findings = probes.flatMap((e) => findInText(`response to "${e.label}" (HTTP ${e.status})`, `${e.body}\n${JSON.stringify(e.headers)}`));
    expect(findings).toEqual([]);
  });
});
