import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeBsn } from '../lib/bsn.ts';
import { ALL_BSNS, AT, PERSONS } from './support/fixtures.ts';
import { type Federation, type GraphQLBody, startFederation } from './support/federation.ts';
import { accessRecordsOf, hitCheckInTrace, nodeAccessRecords, nodeAuditFile, processingOfTrace } from './support/node-calls.ts';
import type { NodeId } from '../lib/partners.ts';

// DESIGN §5 and §7: privacy officers (purpose privacy-audit) read the gateway's access records,
// one per request, each with every component's processing records of that trace. An officer sees
// a request only when their organisation asked or provided data for it.

const VT_ORG = 'veilig-thuis-rotterdam-rijnmond';
const run = randomUUID().slice(0, 8);
const HEX32 = /^[0-9a-f]{32}$/;

const HIT_CHECK = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { subjectRef complete anyHit partners { partner status } } }`;
const ACTIVE_BANS = `query Bans($bsn: String!, $at: DateTime) {
  activeBans(subject: { bsn: $bsn }, at: $at) { subjectRef complete underActiveBan bans { id } partners { partner status } } }`;
// A Veilig Thuis worker's (refused) ban query; its own document, so that no other caller shares it.
const VT_BANS = `query VtBans($bsn: String!) { activeBans(subject: { bsn: $bsn }) { complete underActiveBan bans { id } } }`;
const CONTACT_BANNED = `query Contact($bsn: String!, $other: String!, $at: DateTime) {
  contactBanned(subject: { bsn: $bsn }, counterpart: { bsn: $other }, at: $at) { complete banned banIds } }`;

const NODE_FIELDS = `traceId time requester { org sub roles } purpose processingActivity legalBasis caseRef operation decision rule policyRevision outcome
  partners { partner status }
  records { component name traceId spanId parentSpanId startTime endTime statusCode attributes chainValid }`;

/** The accessLog document; `first` and `after` are left out of it unless given, so the schema default applies. */
function accessLogDocument(options: { first?: boolean; after?: boolean }): string {
  const variables = ['$filter: AccessLogFilter!', ...(options.first ? ['$first: Int'] : []), ...(options.after ? ['$after: String'] : [])];
  const args = ['filter: $filter', ...(options.first ? ['first: $first'] : []), ...(options.after ? ['after: $after'] : [])];
  return `query Log(${variables.join(', ')}) { accessLog(${args.join(', ')}) {
    edges { cursor node { ${NODE_FIELDS} } } pageInfo { hasNextPage endCursor } } }`;
}

interface Purpose {
  processingActivity: string;
  legalBasis: string;
}
const purposeFile = (id: string): Purpose =>
  parseYaml(readFileSync(new URL(`../policies/purposes/${id}.yaml`, import.meta.url), 'utf8')) as Purpose;

const windowStart = () => new Date(Date.now() - 1).toISOString();
// `to` is exclusive: a moment after the last request of the window.
const windowEnd = () => new Date(Date.now() + 1000).toISOString();

describe('accessLog for privacy officers (DESIGN §5, §7)', () => {
  let federation: Federation;
  const responses: string[] = [];

  beforeAll(async () => {
    // A deadline that a loaded machine still meets: only the stopped node below may miss it.
    federation = await startFederation({ deadlineMs: 5_000 });
  }, 90_000);
  afterAll(() => federation?.stop());

  const vtWorker = (sub: string, claims: Record<string, unknown> = {}) =>
    federation.issuer.token({ org: VT_ORG, roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-2026-000123', sub, ...claims });
  const policeWorker = (sub: string) => federation.issuer.token({ sub, case_ref: 'PL-2026-4711' });
  const probationWorker = (sub: string) =>
    federation.issuer.token({ org: 'reclassering', roles: ['reclassering-medewerker'], purpose: 'reclassering-supervision', case_ref: 'RN-2026-77', sub });
  const officer = (org: string) =>
    federation.issuer.token({ org, roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined, sub: `fg-${org}-${run}` });

  /** Runs accessLog; every answer is kept so that no test can miss a BSN in one. */
  async function accessLog(token: string, filter: Record<string, unknown>, page: { first?: number; after?: string } = {}) {
    const document = accessLogDocument({ first: 'first' in page, after: 'after' in page });
    const answer = await federation.query(token, document, { filter, ...page });
    responses.push(JSON.stringify(answer.body));
    for (const bsn of ALL_BSNS) expect(JSON.stringify(answer.body), 'a BSN in an accessLog answer').not.toContain(bsn);
    return answer;
  }

  async function edgesOf(token: string, filter: Record<string, unknown>, page: { first?: number; after?: string } = {}): Promise<any[]> {
    const answer = await accessLog(token, filter, page);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body.errors).toBeUndefined();
    return answer.body.data!.accessLog.edges;
  }

  /** A node's processing records of one trace, read from its own log. */
  function nodeProcessing(node: NodeId, traceId: string): any[] {
    const db = new Database(nodeAuditFile(federation.dataDir, node), { readonly: true });
    try {
      return (db.prepare("SELECT body FROM records WHERE kind = 'processing' AND trace_id = ? ORDER BY seq").all(traceId) as { body: string }[]).map((row) =>
        JSON.parse(row.body),
      );
    } finally {
      db.close();
    }
  }

  function gatewayAccessRecords(where: string, ...params: string[]): any[] {
    const db = new Database(join(federation.dataDir, 'gateway', 'audit.db'), { readonly: true });
    try {
      return (db.prepare(`SELECT body FROM records WHERE kind = 'access' AND ${where} ORDER BY seq`).all(...params) as { body: string }[]).map((row) =>
        JSON.parse(row.body),
      );
    } finally {
      db.close();
    }
  }

  const expectBadInput = (answer: { status: number; body: GraphQLBody }) => {
    expect(answer.status, JSON.stringify(answer.body)).toBe(400);
    expect(answer.body.errors?.map((error) => error.extensions?.['code'])).toEqual(['BAD_USER_INPUT']);
    expect(answer.body.data ?? null).toBeNull();
  };

  it('holds exactly one access record per request — allowed, denied and failed — with who, why, on what basis and how it went', async () => {
    const sub = `vt-${run}-one`;
    const token = await vtWorker(sub);
    const from = windowStart();

    const allowed = await federation.query(token, HIT_CHECK, { bsn: PERSONS.subject });
    expect(allowed.status).toBe(200);
    const outsidePurpose = await federation.query(token, VT_BANS, { bsn: PERSONS.subject });
    expect(outsidePurpose.body.errors![0]!.extensions!['code']).toBe('PURPOSE_FORBIDS_FIELD');
    const noCaseRef = await federation.query(await vtWorker(sub, { case_ref: undefined }), HIT_CHECK, { bsn: PERSONS.subject });
    expect(noCaseRef.body.errors![0]!.extensions!['code']).toBe('FORBIDDEN');
    const badBsn = await federation.query(token, HIT_CHECK, { bsn: '999998620' });
    expect(badBsn.body.errors![0]!.extensions!['code']).toBe('BAD_USER_INPUT');
    const misspelt = await federation.query(token, 'query Typo { hitChek(subject: { bsn: "123456782" }) { complete } }');
    expect(misspelt.body.errors![0]!.extensions!['code']).toBe('GRAPHQL_VALIDATION_FAILED');
    const probation = federation.nodes.reclassering.process;
    probation.kill('SIGSTOP');
    let partial: Awaited<ReturnType<Federation['query']>>;
    try {
      partial = await federation.query(token, HIT_CHECK, { bsn: PERSONS.unknown });
    } finally {
      probation.kill('SIGCONT');
    }
    expect(partial.status).toBe(200);
    expect(partial.body.data!.hitCheck.complete).toBe(false);
    const to = windowEnd();

    // Exactly one gateway access record per request, read from the log itself.
    const stored = gatewayAccessRecords('requester_sub = ?', sub);
    expect(stored).toHaveLength(6);
    expect(new Set(stored.map((record) => record.trace_id)).size).toBe(6);

    const edges = await edgesOf(await officer(VT_ORG), { requesterSub: sub, from, to }, { first: 100 });
    expect(edges).toHaveLength(6);
    expect(edges.map((edge) => edge.node.traceId)).toEqual(stored.map((record) => record.trace_id).reverse());
    const [unavailable, typo, invalid, forbidden, denied, ok] = edges.map((edge) => edge.node);
    const hit = purposeFile('vt-hit-check');
    for (const node of [typo, unavailable, invalid, forbidden, denied, ok]) {
      expect(node.traceId).toMatch(HEX32);
      expect(node.requester).toEqual({ org: VT_ORG, sub, roles: ['vt-medewerker'] });
      expect(node.purpose).toBe('vt-hit-check');
      expect(node.processingActivity).toBe(hit.processingActivity);
      expect(node.legalBasis).toBe(hit.legalBasis);
      expect(Date.parse(node.time)).toBeGreaterThanOrEqual(Date.parse(from));
      expect(Date.parse(node.time)).toBeLessThan(Date.parse(to));
      expect(node.decision).toMatch(/^(ALLOW|DENY:[A-Z_]+)$/);
      expect(['ALLOWED', 'DENIED', 'PARTIAL', 'ERROR']).toContain(node.outcome);
      expect(node.policyRevision).toMatch(/^[0-9a-f]{64}$/);
    }
    // The rule that decided and the policy set it came from, as the record itself keeps them.
    expect(edges.map(({ node }) => [node.rule, node.policyRevision])).toEqual([...stored].reverse().map((record) => [record.rule, record.policyRevision]));
    expect(ok.rule).toBe('purposes/vt-hit-check.yaml: allow');

    expect(ok).toMatchObject({ caseRef: 'VT-2026-000123', operation: 'Hit', decision: 'ALLOW', outcome: 'ALLOWED' });
    expect(ok.partners).toEqual([
      { partner: 'POLITIE', status: 'HIT' },
      { partner: 'VEILIG_THUIS', status: 'HIT' },
      { partner: 'OM', status: 'HIT' },
      { partner: 'RECLASSERING', status: 'HIT' },
    ]);

    expect(denied).toMatchObject({ caseRef: 'VT-2026-000123', operation: 'VtBans', decision: 'DENY:PURPOSE_FORBIDS_FIELD', outcome: 'DENIED', partners: [] });
    expect(forbidden).toMatchObject({ caseRef: null, decision: 'DENY:FORBIDDEN', outcome: 'DENIED', partners: [] });
    // Refused before any node was asked: no partner status, no node's records.
    for (const node of [denied, forbidden, invalid, typo]) {
      expect(node.partners).toEqual([]);
      expect(node.records.filter((record: any) => record.component !== 'gateway')).toEqual([]);
    }
    expect(invalid).toMatchObject({ decision: 'DENY:BAD_USER_INPUT', outcome: 'DENIED' });
    expect(typo).toMatchObject({ decision: 'DENY:GRAPHQL_VALIDATION_FAILED', outcome: 'DENIED' });

    expect(unavailable).toMatchObject({ operation: 'Hit', decision: 'ALLOW', outcome: 'PARTIAL' });
    expect(unavailable.partners).toEqual([
      { partner: 'POLITIE', status: 'NO_HIT' },
      { partner: 'VEILIG_THUIS', status: 'NO_HIT' },
      { partner: 'OM', status: 'NO_HIT' },
      { partner: 'RECLASSERING', status: 'UNAVAILABLE' },
    ]);
  });

  it("decides every request on its own: a refusal of one caller's document is not the next caller's decision", async () => {
    const shared = `query SharedBans($bsn: String!) { activeBans(subject: { bsn: $bsn }) { complete underActiveBan } }`;
    const vtSub = `vt-${run}-shared`;
    const policeSub = `agent-${run}-shared`;
    const from = windowStart();
    const refused = await federation.query(await vtWorker(vtSub), shared, { bsn: PERSONS.unknown });
    expect(refused.status).toBe(403);
    expect(refused.body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', purpose: 'vt-hit-check' });
    // police-ban-enforcement includes activeBans: the same document is answered for the police.
    const answered = await federation.query(await policeWorker(policeSub), shared, { bsn: PERSONS.unknown });
    const to = windowEnd();
    expect(answered.status, JSON.stringify(answered.body)).toBe(200);
    expect(answered.body.errors).toBeUndefined();
    expect(answered.body.data!.activeBans).toEqual({ complete: true, underActiveBan: false });

    const [vtEdge] = await edgesOf(await officer(VT_ORG), { requesterSub: vtSub, from, to });
    expect(vtEdge.node).toMatchObject({ decision: 'DENY:PURPOSE_FORBIDS_FIELD', outcome: 'DENIED' });
    const [policeEdge] = await edgesOf(await officer('politie'), { requesterSub: policeSub, from, to });
    expect(policeEdge.node).toMatchObject({ purpose: 'police-ban-enforcement', decision: 'ALLOW', outcome: 'ALLOWED' });
  });

  it('refuses and records a document outside the purpose every time it comes, with 403 each time', async () => {
    const document = `query VtBansTwice($bsn: String!) { activeBans(subject: { bsn: $bsn }) { complete } }`;
    const sub = `vt-${run}-twice`;
    const token = await vtWorker(sub);
    const from = windowStart();
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const answer = await federation.query(token, document, { bsn: PERSONS.unknown });
      statuses.push(answer.status);
      expect(answer.body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'Query.activeBans' });
    }
    const to = windowEnd();
    const edges = await edgesOf(await officer(VT_ORG), { requesterSub: sub, from, to });
    expect(edges.map((edge) => edge.node.decision)).toEqual(Array(3).fill('DENY:PURPOSE_FORBIDS_FIELD'));
    expect(statuses).toEqual([403, 403, 403]);
  });

  it("holds, in a person's history, the requests about them refused to callers whose token verified", async () => {
    // A person of this run's own, whom no other test asks about: the first eight-digit prefix from
    // the run's digits that has an 11-check digit (about one in eleven has none).
    let target = '';
    for (let prefix = Number(`7${run.replace(/\D/g, '').padEnd(7, '3').slice(0, 7)}`); !target; prefix++) target = completeBsn(String(prefix)) ?? '';
    const vtSub = `vt-${run}-refused`;
    const policeSub = `agent-${run}-refused`;
    const vt = await vtWorker(vtSub);
    const outsidePurpose = await federation.query(vt, VT_BANS, { bsn: target });
    expect(outsidePurpose.body.errors![0]!.extensions!['code']).toBe('PURPOSE_FORBIDS_FIELD');
    // Refused before its document is parsed; the person is named inline, not in a variable.
    const noCaseRef = await federation.query(await vtWorker(vtSub, { case_ref: undefined }), `{ hitCheck(subject: { bsn: "${target}" }) { complete } }`);
    expect(noCaseRef.body.errors![0]!.extensions!['code']).toBe('FORBIDDEN');
    const badPlace = await federation.query(
      await policeWorker(policeSub),
      `query Two($bsn: String!) { a: hitCheck(subject: { bsn: $bsn }) { complete } b: activeBans(subject: { bsn: $bsn }, location: { lat: 91, lon: 0 }) { bans { violatedAt } } }`,
      { bsn: target },
    );
    expect(badPlace.body.errors![0]!.extensions!['code']).toBe('BAD_USER_INPUT');
    // A variable that does not coerce next to the person's: the person is still named.
    const badTime = await federation.query(await policeWorker(policeSub), ACTIVE_BANS, { bsn: target, at: 'yesterday' });
    expect(badTime.body.errors![0]!.extensions!['code']).toBe('BAD_USER_INPUT');
    expect((await federation.query(null, HIT_CHECK, { bsn: target })).status).toBe(401);
    const answered = await federation.query(vt, HIT_CHECK, { bsn: target });
    expect(answered.status).toBe(200);
    const ref = answered.body.data!.hitCheck.subjectRef;

    // Written with each refusal, one per person per root field; none for the caller no token vouched for.
    const db = new Database(join(federation.dataDir, 'gateway', 'audit.db'), { readonly: true });
    const aboutTarget = (db.prepare("SELECT body FROM records WHERE kind = 'processing' AND subject_ref = ? ORDER BY seq").all(ref) as { body: string }[]).map(
      (row) => JSON.parse(row.body),
    );
    db.close();
    expect(aboutTarget.map((record) => [record.name, record.status_code, record.attributes['soh.decision'] ?? 'ALLOW'])).toEqual([
      ['activeBans', 'UNSET', 'DENY:PURPOSE_FORBIDS_FIELD'],
      ['hitCheck', 'UNSET', 'DENY:FORBIDDEN'],
      ['hitCheck', 'UNSET', 'DENY:BAD_USER_INPUT'],
      ['activeBans', 'UNSET', 'DENY:BAD_USER_INPUT'],
      ['activeBans', 'UNSET', 'DENY:BAD_USER_INPUT'],
      ['hitCheck', 'UNSET', 'ALLOW'],
    ]);

    // Each officer sees the attempts their organisation made.
    const vtHistory = await edgesOf(await officer(VT_ORG), { subjectBsn: target });
    expect(vtHistory.map((edge) => edge.node.decision)).toEqual(['ALLOW', 'DENY:FORBIDDEN', 'DENY:PURPOSE_FORBIDS_FIELD']);
    expect(vtHistory[2].node.records).toMatchObject([{ component: 'gateway', name: 'activeBans', statusCode: 'UNSET', chainValid: true }]);
    const policeHistory = await edgesOf(await officer('politie'), { subjectBsn: target });
    expect(policeHistory.map((edge) => [edge.node.requester.sub, edge.node.decision])).toEqual([
      [policeSub, 'DENY:BAD_USER_INPUT'],
      [policeSub, 'DENY:BAD_USER_INPUT'],
    ]);
    // A window's bounds finer than a millisecond compare with the records' whole milliseconds exactly.
    const [newest] = vtHistory;
    const justAfter = newest.node.time.replace(/Z$/, '5Z');
    expect((await edgesOf(await officer(VT_ORG), { requesterSub: vtSub, from: '2026-01-01T00:00:00Z', to: justAfter })).map((edge) => edge.node.traceId)).toContain(newest.node.traceId);
    expect((await edgesOf(await officer(VT_ORG), { requesterSub: vtSub, from: justAfter, to: '2100-01-01T00:00:00Z' })).map((edge) => edge.node.traceId)).not.toContain(newest.node.traceId);
    // An empty subjectBsn beside another filter is no filter on the person, as before.
    expect((await edgesOf(await officer(VT_ORG), { requesterSub: vtSub, subjectBsn: '', from: '2026-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' })).length).toBe(3);
  });

  it('records a request refused before the caller is known, too', async () => {
    const before = gatewayAccessRecords('1 = 1').length;
    const answer = await federation.query(null, HIT_CHECK, { bsn: PERSONS.subject });
    expect(answer.status).toBe(401);
    const after = gatewayAccessRecords('1 = 1');
    expect(after).toHaveLength(before + 1);
    expect(after.at(-1)).toMatchObject({ decision: 'DENY:UNAUTHENTICATED', outcome: 'DENIED', partners: [] });
  });

  it("asks the nodes for their processing records only when the page shows timelines", async () => {
    const sub = `vt-${run}-pages`;
    expect((await federation.query(await vtWorker(sub), HIT_CHECK, { bsn: PERSONS.subject })).status).toBe(200);
    const officerSub = `fg-om-${run}-pages`;
    const omOfficer = await federation.issuer.token({ org: 'om', roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined, sub: officerSub });
    const callsBy = (node: NodeId) => nodeAccessRecords(federation.dataDir, node).filter((record) => record.sub === officerSub).length;
    const nodes: NodeId[] = ['politie', 'veilig-thuis', 'reclassering'];

    const bare = await federation.query(omOfficer, `query Bare($filter: AccessLogFilter!) { accessLog(filter: $filter) { edges { node { traceId outcome } } } }`, { filter: { subjectBsn: PERSONS.subject } });
    expect(bare.body.errors).toBeUndefined();
    expect(bare.body.data!.accessLog.edges.length).toBeGreaterThan(0);
    expect(nodes.map(callsBy)).toEqual([0, 0, 0]);

    const edges = await edgesOf(omOfficer, { subjectBsn: PERSONS.subject });
    expect(edges.some((edge) => edge.node.records.some((record: any) => record.component === 'politie'))).toBe(true);
    expect(nodes.map(callsBy)).toEqual([1, 1, 1]);
  });

  it('keeps an unknown purpose claim on record, and in its error, as the token names it, unless it could hold a BSN', async () => {
    const sub = `vt-${run}-claims`;
    const hyphenated = `p-${PERSONS.subject.slice(0, 4)}-${PERSONS.subject.slice(4, 6)}-${PERSONS.subject.slice(6)}`;
    const echoed: unknown[] = [];
    for (const purpose of ['no-such-purpose', `lookup-${PERSONS.subject}`, hyphenated, 'Not A Purpose Id']) {
      const answer = await federation.query(await vtWorker(sub, { purpose }), HIT_CHECK, { bsn: PERSONS.subject });
      expect(answer.status).toBe(403);
      echoed.push(answer.body.errors![0]!.extensions!['purpose']);
    }
    expect(echoed).toEqual(['no-such-purpose', 'unknown', 'unknown', 'unknown']);
    const stored = gatewayAccessRecords('requester_sub = ?', sub);
    expect(stored.map((record) => [record.purpose, record.decision])).toEqual([
      ['no-such-purpose', 'DENY:FORBIDDEN'],
      ['unknown', 'DENY:FORBIDDEN'],
      ['unknown', 'DENY:FORBIDDEN'],
      ['unknown', 'DENY:FORBIDDEN'],
    ]);
  });

  it('serves the audit viewer so that only its own script and style run, unframed, and never kept by a cache', async () => {
    const response = await fetch(`${federation.gatewayUrl}/audit`);
    expect(response.status).toBe(200);
    const html = await response.text();
    const csp = response.headers.get('content-security-policy') ?? '';
    const hashOf = (tag: string) => `'sha256-${createHash('sha256').update(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(html)![1]!).digest('base64')}'`;
    expect(csp).toContain(`script-src ${hashOf('script')};`);
    expect(csp).toContain(`style-src ${hashOf('style')};`);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("form-action 'none'");
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('refuses a filter that names neither traceId, subjectBsn, purpose nor requesterSub with from and to', async () => {
    const token = await officer('politie');
    const from = '2026-01-01T00:00:00Z';
    const to = '2027-01-01T00:00:00Z';
    for (const filter of [
      {},
      { requesterSub: 'agent-1' },
      { requesterSub: 'agent-1', from },
      { requesterSub: 'agent-1', to },
      { from, to },
      { traceId: '' },
      { traceId: 'ABCDEF0123456789ABCDEF0123456789' },
      { subjectBsn: '999998620' },
      { subjectBsn: '12345678' },
      { requesterSub: 'agent-1', from: '2026-01-01', to },
      { requesterSub: 'agent-1', purpose: 'vt-hit-check' },
      { requesterSub: 'agent-1', subjectBsn: PERSONS.unknown, from },
    ]) {
      const answer = await accessLog(token, filter);
      expectBadInput(answer);
      expect(JSON.stringify(answer.body)).not.toContain('999998620');
    }
    for (const filter of [
      { traceId: '0123456789abcdef0123456789abcdef' },
      { subjectBsn: PERSONS.unknown },
      { purpose: 'vt-hit-check' },
      { requesterSub: 'agent-1', from, to },
      { requesterSub: 'agent-1', purpose: 'vt-hit-check', from, to },
    ]) {
      const answer = await accessLog(token, filter);
      expect(answer.status, JSON.stringify({ filter, body: answer.body })).toBe(200);
    }
  });

  it('refuses a cursor it did not issue and a page size outside 1–1000', async () => {
    const token = await officer('politie');
    const filter = { purpose: 'police-ban-enforcement' };
    for (const after of ['not a cursor', '!!!', Buffer.from('seq:abc').toString('base64url'), Buffer.from('offset:5').toString('base64url')]) {
      expectBadInput(await accessLog(token, filter, { after }));
    }
    for (const first of [0, -1, 1001]) expectBadInput(await accessLog(token, filter, { first }));
    for (const first of [1, 1000]) expect((await accessLog(token, filter, { first })).status).toBe(200);
  });

  describe('paging', () => {
    const sub = `vt-${run}-paging`;
    const COUNT = 30;
    let from: string;
    let to: string;
    let newestFirst: string[];

    beforeAll(async () => {
      const token = await vtWorker(sub);
      from = windowStart();
      for (let i = 0; i < COUNT; i++) {
        const answer = await federation.query(token, HIT_CHECK, { bsn: i % 2 ? PERSONS.unknown : PERSONS.vtOnly });
        expect(answer.status).toBe(200);
      }
      to = windowEnd();
      newestFirst = gatewayAccessRecords('requester_sub = ?', sub)
        .map((record) => record.trace_id as string)
        .reverse();
      expect(newestFirst).toHaveLength(COUNT);
    }, 60_000);

    it('gives 25 requests by default, newest first', async () => {
      const answer = await accessLog(await officer(VT_ORG), { requesterSub: sub, from, to });
      expect(answer.status).toBe(200);
      const { edges, pageInfo } = answer.body.data!.accessLog;
      expect(edges).toHaveLength(25);
      expect(pageInfo).toEqual({ hasNextPage: true, endCursor: edges[24].cursor });
      expect(edges.map((edge: any) => edge.node.traceId)).toEqual(newestFirst.slice(0, 25));
      const times = edges.map((edge: any) => Date.parse(edge.node.time));
      expect(times).toEqual([...times].sort((a, b) => b - a));
    });

    it('returns every request exactly once across cursor pages', async () => {
      const token = await officer(VT_ORG);
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      for (;;) {
        const answer = await accessLog(token, { requesterSub: sub, from, to }, after === undefined ? { first: 7 } : { first: 7, after });
        expect(answer.status).toBe(200);
        const { edges, pageInfo } = answer.body.data!.accessLog;
        pages++;
        expect(edges.length).toBeLessThanOrEqual(7);
        seen.push(...edges.map((edge: any) => edge.node.traceId));
        if (!pageInfo.hasNextPage) break;
        expect(pageInfo.endCursor).toBe(edges.at(-1).cursor);
        after = pageInfo.endCursor;
        expect(pages).toBeLessThan(10);
      }
      expect(pages).toBe(5);
      expect(seen).toEqual(newestFirst);

      const single = await edgesOf(token, { requesterSub: sub, from, to }, { first: 1000 });
      expect(single.map((edge) => edge.node.traceId)).toEqual(newestFirst);
    });

    it('narrows to one request by traceId and to one purpose by purpose', async () => {
      const token = await officer(VT_ORG);
      const one = await edgesOf(token, { traceId: newestFirst[3] });
      expect(one.map((edge) => edge.node.traceId)).toEqual([newestFirst[3]]);
      const byPurpose = await edgesOf(token, { purpose: 'vt-hit-check' }, { first: 1000 });
      expect(byPurpose.length).toBeGreaterThanOrEqual(COUNT);
      expect(new Set(byPurpose.map((edge) => edge.node.purpose))).toEqual(new Set(['vt-hit-check']));
      const outside = await edgesOf(token, { requesterSub: sub, from: '2020-01-01T00:00:00Z', to: from });
      expect(outside).toEqual([]);
    });
  });

  describe('visibility: only the requester and the providers', () => {
    it("hides a Veilig Thuis check on a person OM, the police and probation do not know from their officers", async () => {
      const sub = `vt-${run}-vtonly`;
      const answer = await federation.query(await vtWorker(sub), HIT_CHECK, { bsn: PERSONS.vtOnly });
      expect(answer.body.data!.hitCheck.partners.map((p: any) => p.status)).toEqual(['NO_HIT', 'HIT', 'NO_HIT', 'NO_HIT']);

      const own = (await edgesOf(await officer(VT_ORG), { subjectBsn: PERSONS.vtOnly }, { first: 1000 })).filter((edge) => edge.node.requester.sub === sub);
      expect(own).toHaveLength(1);
      const traceId = own[0].node.traceId;
      for (const org of ['om', 'politie', 'reclassering']) {
        const token = await officer(org);
        const bySubject = await edgesOf(token, { subjectBsn: PERSONS.vtOnly }, { first: 1000 });
        expect(bySubject.filter((edge) => edge.node.traceId === traceId), org).toEqual([]);
        expect(bySubject.filter((edge) => edge.node.purpose === 'vt-hit-check'), org).toEqual([]);
        expect(await edgesOf(token, { traceId }), org).toEqual([]);
        expect((await edgesOf(token, { purpose: 'vt-hit-check' }, { first: 1000 })).filter((edge) => edge.node.traceId === traceId), org).toEqual([]);
      }
    });

    it("shows a Veilig Thuis check on the subject to OM's officer, because OM answered HIT", async () => {
      const sub = `vt-${run}-subject`;
      await federation.query(await vtWorker(sub), HIT_CHECK, { bsn: PERSONS.subject });
      for (const org of ['om', 'politie', 'reclassering', VT_ORG]) {
        const edges = (await edgesOf(await officer(org), { subjectBsn: PERSONS.subject }, { first: 1000 })).filter((edge) => edge.node.requester.sub === sub);
        expect(edges, org).toHaveLength(1);
      }
    });

    it("shows a police check that found nothing only to the police's own officer", async () => {
      const sub = `agent-${run}-nothing`;
      const at = AT.may2026;
      const answer = await federation.query(await policeWorker(sub), ACTIVE_BANS, { bsn: PERSONS.unknown, at });
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body.data!.activeBans.partners.map((p: any) => p.status)).toEqual(['NO_HIT', 'NO_HIT', 'NO_HIT']);
      const mine = (edges: any[]) => edges.filter((edge) => edge.node.requester.sub === sub);
      expect(mine(await edgesOf(await officer('politie'), { subjectBsn: PERSONS.unknown }, { first: 1000 }))).toHaveLength(1);
      for (const org of ['om', 'reclassering', VT_ORG]) {
        expect(mine(await edgesOf(await officer(org), { subjectBsn: PERSONS.unknown }, { first: 1000 })), org).toEqual([]);
      }
    });

    it('counts a partner that released data as a provider even when no ban of its own was active', async () => {
      const sub = `agent-${run}-2028`;
      // In 2028 probation's only ban (B1) has ended: its status is NO_HIT, yet it released its record.
      const answer = await federation.query(await policeWorker(sub), ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.y2028 });
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body.data!.activeBans.partners).toEqual([
        { partner: 'POLITIE', status: 'HIT' },
        { partner: 'OM', status: 'HIT' },
        { partner: 'RECLASSERING', status: 'NO_HIT' },
      ]);
      const edges = (await edgesOf(await officer('reclassering'), { subjectBsn: PERSONS.subject }, { first: 1000 })).filter(
        (edge) => edge.node.requester.sub === sub,
      );
      expect(edges).toHaveLength(1);
      // Veilig Thuis was not asked for bans: its officer does not see the request.
      const vt = (await edgesOf(await officer(VT_ORG), { subjectBsn: PERSONS.subject }, { first: 1000 })).filter((edge) => edge.node.requester.sub === sub);
      expect(vt).toEqual([]);
    });
    it('shows a request to the officer of a partner whose node found the person but answered after the deadline, and no other', async () => {
      const subject = `vt-${run}-late-hit`;
      const nobody = `vt-${run}-late-none`;
      const probation = federation.nodes.reclassering.process;
      probation.kill('SIGSTOP');
      let answers: Awaited<ReturnType<Federation['query']>>[];
      try {
        answers = await Promise.all([
          federation.query(await vtWorker(subject), HIT_CHECK, { bsn: PERSONS.subject }),
          federation.query(await vtWorker(nobody), HIT_CHECK, { bsn: PERSONS.unknown }),
        ]);
      } finally {
        probation.kill('SIGCONT');
      }
      for (const answer of answers) expect(answer.body.data!.hitCheck.partners.at(-1)).toEqual({ partner: 'RECLASSERING', status: 'UNAVAILABLE' });
      const [late] = gatewayAccessRecords('requester_sub = ?', subject);
      const [lateNone] = gatewayAccessRecords('requester_sub = ?', nobody);
      expect(late.providers).not.toContain('RECLASSERING');
      // Whether the resumed node still handles a call the gateway gave up on depends on timing; what
      // it then writes is what a late answer leaves: the same call, in the same trace, in its log.
      const lateAnswer = (sub: string, bsn: string, answer: Awaited<ReturnType<Federation['query']>>, traceId: string) =>
        hitCheckInTrace(federation.dataDir, { id: 'reclassering', url: federation.nodes.reclassering.url }, { sub, org: VT_ORG, bsn, subjectRef: answer.body.data!.hitCheck.subjectRef, traceId });
      expect(await lateAnswer(subject, PERSONS.subject, answers[0]!, late.trace_id)).toBe(200);
      expect(await lateAnswer(nobody, PERSONS.unknown, answers[1]!, lateNone.trace_id)).toBe(200);
      const outcomes = (traceId: string) => new Set(nodeProcessing('reclassering', traceId).map((record) => record.attributes['soh.outcome']));
      expect(outcomes(late.trace_id)).toEqual(new Set(['HIT']));
      expect(outcomes(lateNone.trace_id)).toEqual(new Set(['NO_HIT']));

      const token = await officer('reclassering');
      const mine = (edges: any[], sub: string) => edges.filter((edge) => edge.node.requester.sub === sub);
      const edges = mine(await edgesOf(token, { subjectBsn: PERSONS.subject }, { first: 1000 }), subject);
      expect(edges).toHaveLength(1);
      expect(edges[0].node.partners.at(-1)).toEqual({ partner: 'RECLASSERING', status: 'UNAVAILABLE' });
      expect(edges[0].node.records.some((record: any) => record.component === 'reclassering' && record.attributes['soh.outcome'] === 'HIT')).toBe(true);
      expect(await edgesOf(token, { traceId: late.trace_id })).toHaveLength(1);
      // Probation did not know the other person: the request stays hidden from its officer.
      expect(mine(await edgesOf(token, { subjectBsn: PERSONS.unknown }, { first: 1000 }), nobody)).toEqual([]);
      expect(await edgesOf(token, { traceId: lateNone.trace_id })).toEqual([]);
      // Paging over both keeps every visible request exactly once.
      const paged: string[] = [];
      for (let after: string | undefined; ; ) {
        const answer = await accessLog(token, { purpose: 'vt-hit-check' }, { first: 1, ...(after ? { after } : {}) });
        const { edges: page, pageInfo } = answer.body.data!.accessLog;
        paged.push(...page.map((edge: any) => edge.node.traceId));
        if (!pageInfo.hasNextPage) break;
        after = pageInfo.endCursor;
      }
      expect(paged).toContain(late.trace_id);
      expect(paged).not.toContain(lateNone.trace_id);
      expect(new Set(paged).size).toBe(paged.length);
    });
  });

  describe("a subject's history across partners", () => {
    const subs = { vt: `vt-${run}-hist`, police: `agent-${run}-hist`, probation: `rn-${run}-hist`, contact: `agent-${run}-contact` };
    let subjectRef: string;
    let history: any[];

    beforeAll(async () => {
      const answered = async (request: Promise<{ status: number; body: GraphQLBody }>) => {
        const { status, body } = await request;
        expect(status, JSON.stringify(body)).toBe(200);
        expect(body.errors).toBeUndefined();
        return body;
      };
      const hit = await answered(federation.query(await vtWorker(subs.vt), HIT_CHECK, { bsn: PERSONS.subject }));
      subjectRef = hit.data!.hitCheck.subjectRef;
      await answered(federation.query(await policeWorker(subs.police), ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026 }));
      await answered(federation.query(await probationWorker(subs.probation), ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026 }));
      await answered(federation.query(await policeWorker(subs.contact), CONTACT_BANNED, { bsn: PERSONS.subject, other: PERSONS.victim, at: AT.may2026 }));
      const mine = new Set(Object.values(subs));
      history = (await edgesOf(await officer('politie'), { subjectBsn: PERSONS.subject }, { first: 1000 })).filter((edge) =>
        mine.has(edge.node.requester.sub),
      );
    }, 60_000);

    it('lists every partner organisation that looked the subject up, in one subjectBsn query', () => {
      expect(history.map((edge) => [edge.node.requester.org, edge.node.requester.sub, edge.node.purpose])).toEqual([
        ['politie', subs.contact, 'police-ban-enforcement'],
        ['reclassering', subs.probation, 'reclassering-supervision'],
        ['politie', subs.police, 'police-ban-enforcement'],
        [VT_ORG, subs.vt, 'vt-hit-check'],
      ]);
      for (const edge of history) expect(edge.node).toMatchObject({ decision: 'ALLOW', outcome: 'ALLOWED' });
    });

    it("includes the gateway's and every asked node's processing records of the trace, each with a valid chain", () => {
      const expectedComponents: Record<string, string[]> = {
        [subs.vt]: ['gateway', 'politie', 'veilig-thuis', 'om', 'reclassering'],
        [subs.police]: ['gateway', 'politie', 'om', 'reclassering'],
        [subs.probation]: ['gateway', 'politie', 'om', 'reclassering'],
      };
      for (const edge of history) {
        const { node } = edge;
        expect(node.records.length).toBeGreaterThan(0);
        for (const record of node.records) {
          expect(record.traceId, 'one trace id links every record of the request').toBe(node.traceId);
          expect(record.chainValid, `${record.component} ${record.name}`).toBe(true);
          expect(record.spanId).toMatch(/^[0-9a-f]{16}$/);
          expect(Date.parse(record.endTime)).toBeGreaterThanOrEqual(Date.parse(record.startTime));
        }
        const expected = expectedComponents[node.requester.sub];
        if (!expected) continue;
        expect(new Set(node.records.map((record: any) => record.component)), node.requester.sub).toEqual(new Set(expected));
        for (const component of expected) {
          const own = node.records.filter((record: any) => record.component === component);
          expect(own, `${component} writes one record per subject`).toHaveLength(1);
        }
        expect(node.records.find((record: any) => record.component === 'gateway').name).toBe(node.requester.sub === subs.vt ? 'hitCheck' : 'activeBans');
      }
    });

    it('carries the dpl.core attributes with the subject reference, never the BSN', () => {
      for (const edge of history) {
        for (const record of edge.node.records) {
          expect(record.attributes['dpl.core.processing_activity_id']).toBe(edge.node.processingActivity);
          expect(record.attributes['dpl.core.data_subject_id_type']).toBe('bsn-ref');
          expect(record.attributes['dpl.core.data_subject_id']).toMatch(/^[A-Za-z0-9_-]{22}$/);
          for (const bsn of ALL_BSNS) expect(JSON.stringify(record)).not.toContain(bsn);
        }
        // Every record is about the subject, except that the contact check processes both persons:
        // the gateway and every node it asked write one record about each.
        const refs = new Set(edge.node.records.map((record: any) => record.attributes['dpl.core.data_subject_id']));
        expect(refs.has(subjectRef)).toBe(true);
        if (edge.node.requester.sub === subs.contact) {
          const gateway = edge.node.records.filter((record: any) => record.component === 'gateway');
          expect(gateway.map((record: any) => record.name)).toEqual(['contactBanned', 'contactBanned']);
          const counterpartRef = gateway[1].attributes['dpl.core.data_subject_id'];
          expect(counterpartRef).not.toBe(subjectRef);
          expect(refs).toEqual(new Set([subjectRef, counterpartRef]));
          for (const component of ['politie', 'om', 'reclassering']) {
            const own = edge.node.records.filter((record: any) => record.component === component);
            expect(own.map((record: any) => record.attributes['dpl.core.data_subject_id']), component).toEqual([subjectRef, counterpartRef]);
          }
          // Probation holds the contact ban that protects the counterpart: it says so about them, and releases nothing else.
          const probationOnCounterpart = edge.node.records.find(
            (record: any) => record.component === 'reclassering' && record.attributes['dpl.core.data_subject_id'] === counterpartRef,
          );
          expect(probationOnCounterpart.attributes).toMatchObject({ 'soh.outcome': 'HIT', 'soh.fields_released': ['NodeBan.protectsCounterpart'] });
        } else {
          expect(refs).toEqual(new Set([subjectRef]));
        }
      }
    });

    it("finds the contact check in the counterpart's history as well", async () => {
      const edges = (await edgesOf(await officer('politie'), { subjectBsn: PERSONS.victim }, { first: 1000 })).filter(
        (edge) => edge.node.requester.sub === subs.contact,
      );
      expect(edges).toHaveLength(1);
      expect(edges[0].node.traceId).toBe(history[0].node.traceId);
    });

    it("records the officer's own subject query, which the organisation's officers can review", async () => {
      const token = await officer('om');
      const from = windowStart();
      await edgesOf(token, { subjectBsn: PERSONS.subject }, { first: 5 });
      const to = windowEnd();
      const reviews = await edgesOf(token, { requesterSub: `fg-om-${run}`, from, to });
      expect(reviews).toHaveLength(1);
      const review = reviews[0].node;
      const audit = purposeFile('privacy-audit');
      expect(review).toMatchObject({
        requester: { org: 'om', sub: `fg-om-${run}`, roles: ['privacy-officer'] },
        purpose: 'privacy-audit',
        processingActivity: audit.processingActivity,
        legalBasis: audit.legalBasis,
        caseRef: null,
        operation: 'Log',
        decision: 'ALLOW',
        outcome: 'ALLOWED',
      });
      // One record of the person searched for, and one of each other person its timelines showed
      // (the victim of a contact check on them): each an accessLog processing of that person.
      const own = review.records.filter((record: any) => record.component === 'gateway');
      for (const record of own) expect(record).toMatchObject({ name: 'accessLog', statusCode: 'UNSET', chainValid: true });
      const subjects = own.map((record: any) => record.attributes['dpl.core.data_subject_id']);
      expect(subjects[0]).toBe(subjectRef);
      expect(new Set(subjects).size).toBe(own.length);
    });
  });

  it("puts a search by who asked in the history of every person its timelines show, as a search by person is", async () => {
    const sub = `vt-${run}-shown`;
    const from = windowStart();
    expect((await federation.query(await vtWorker(sub), HIT_CHECK, { bsn: PERSONS.vtOnly })).status).toBe(200);
    const to = windowEnd();
    const token = await officer(VT_ORG);
    const [shown] = await edgesOf(token, { requesterSub: sub, from, to });
    const subjectRef = shown.node.records.find((record: any) => record.component === 'gateway').attributes['dpl.core.data_subject_id'];

    const history = await edgesOf(token, { subjectBsn: PERSONS.vtOnly });
    const search = history.find((edge) => edge.node.requester.sub === `fg-${VT_ORG}-${run}` && edge.node.operation === 'Log');
    expect(search, 'the search by requester in the history of the person it showed').toBeDefined();
    expect(search.node.records.filter((record: any) => record.component === 'gateway')).toEqual([
      expect.objectContaining({ name: 'accessLog', attributes: expect.objectContaining({ 'dpl.core.data_subject_id': subjectRef, 'soh.requests_returned': 1 }) }),
    ]);
  });

  it("writes no record of persons a page did not show, nor of those an earlier search showed, and shows a person's history only their own", async () => {
    const sub = `vt-${run}-shown-once`;
    const from = windowStart();
    for (const bsn of [PERSONS.vtOnly, PERSONS.subject]) expect((await federation.query(await vtWorker(sub), HIT_CHECK, { bsn })).status).toBe(200);
    const to = windowEnd();
    const officerSub = `fg-${VT_ORG}-${run}`;
    const token = await officer(VT_ORG);
    const gatewayLog = join(federation.dataDir, 'gateway', 'audit.db');
    const lastSearch = () => accessRecordsOf(gatewayLog, officerSub).at(-1).trace_id as string;
    const gatewayProcessing = (traceId: string) => processingOfTrace(gatewayLog, traceId).map((record) => record.attributes['dpl.core.data_subject_id']);

    // A page without timelines shows no one.
    const bare = await federation.query(token, 'query Bare($filter: AccessLogFilter!) { accessLog(filter: $filter) { edges { cursor } } }', { filter: { purpose: 'vt-hit-check' } });
    expect(bare.status).toBe(200);
    expect(gatewayProcessing(lastSearch())).toEqual([]);

    // A search that shows the two hit checks writes a record of each person...
    const shown = await edgesOf(token, { requesterSub: sub, from, to });
    const [other, person] = shown.map((edge) => edge.node.records.find((record: any) => record.component === 'gateway').attributes['dpl.core.data_subject_id']);
    expect(gatewayProcessing(lastSearch()).sort()).toEqual([person, other].sort());
    // ...and a review of that search, which shows its record of the person, writes none.
    const reviews = await edgesOf(token, { requesterSub: officerSub, from, to: windowEnd() });
    expect(reviews.length).toBeGreaterThan(0);
    expect(gatewayProcessing(lastSearch())).toEqual([]);

    // In the person's history, each earlier search shows only its record of them, not the other person.
    const history = await edgesOf(token, { subjectBsn: PERSONS.vtOnly });
    const searches = history.filter((candidate) => candidate.node.operation === 'Log');
    expect(searches.length).toBeGreaterThan(0);
    for (const edge of searches) {
      for (const record of edge.node.records) expect(record.attributes['dpl.core.data_subject_id']).toBe(person);
    }
  });

  it('marks no-hit and policy-denied processing as UNSET', async () => {
    const sub = `vt-${run}-status`;
    const token = await vtWorker(sub);
    const from = windowStart();
    const nothing = await federation.query(token, HIT_CHECK, { bsn: PERSONS.unknown });
    expect(nothing.body.data!.hitCheck.anyHit).toBe(false);
    const denied = await federation.query(token, VT_BANS.replace('VtBans', 'VtBansAgain'), { bsn: PERSONS.unknown });
    expect(denied.status, JSON.stringify(denied.body)).toBe(403);
    const to = windowEnd();
    const [deniedEdge, noHitEdge] = await edgesOf(await officer(VT_ORG), { requesterSub: sub, from, to });
    expect(noHitEdge.node.outcome).toBe('ALLOWED');
    expect(deniedEdge.node.decision).toBe('DENY:PURPOSE_FORBIDS_FIELD');

    const records = noHitEdge.node.records;
    expect(new Set(records.map((record: any) => record.component))).toEqual(new Set(['gateway', 'politie', 'veilig-thuis', 'om', 'reclassering']));
    for (const record of records) {
      expect(record.statusCode, `${record.component} ${record.name}`).toBe('UNSET');
      expect(JSON.stringify(record.attributes)).toContain('NO_HIT');
      expect(JSON.stringify(record.attributes)).not.toMatch(/"HIT"/);
    }
    for (const record of deniedEdge.node.records) expect(record.statusCode).toBe('UNSET');
  });

  it('never returns a BSN in any accessLog answer', async () => {
    const token = await officer('politie');
    for (const bsn of ALL_BSNS) await edgesOf(token, { subjectBsn: bsn }, { first: 1000 });
    await edgesOf(token, { purpose: 'police-ban-enforcement' }, { first: 1000 });
    expect(responses.length).toBeGreaterThan(20);
    for (const text of responses) for (const bsn of ALL_BSNS) expect(text).not.toContain(bsn);
  });
});

describe('accessLog beside a node that breaks the node API', () => {
  let federation: Federation;
  let brokenOm: Server;
  /** While set, the node leaves every processingRecords question unanswered (until the test lets go). */
  let silentOnTraces = false;
  /** While set, the node answers processingRecords with records that claim to be politie's. */
  let impersonating = false;
  /** While set, the node answers processingRecords with its own well-formed records, timed to the microsecond. */
  let finelyTimed = false;
  const unanswered: import('node:http').ServerResponse[] = [];

  beforeAll(async () => {
    // An OM node built by someone else, answering every request with processing records that do
    // not keep to schemas/node.graphql.
    brokenOm = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        if (silentOnTraces && body.includes('processingRecords')) return void unanswered.push(response);
        response.writeHead(200, { 'content-type': 'application/json' });
        if ((impersonating || finelyTimed) && body.includes('processingRecords')) {
          // Well-formed records of the traces asked about: in politie's name, or in its own to the microsecond.
          const { traceIds } = (JSON.parse(body) as { variables: { traceIds: string[] } }).variables;
          const time = finelyTimed ? '2026-05-05T12:00:00.123456Z' : AT.may2026;
          const records = traceIds.map((traceId) => ({
            component: finelyTimed ? 'om' : 'politie', name: 'node.records', traceId, spanId: 'f'.repeat(16), parentSpanId: null, startTime: time, endTime: time,
            statusCode: 'UNSET', attributes: { 'soh.outcome': 'NO_HIT' }, chainValid: true,
          }));
          return void response.end(JSON.stringify({ data: { processingRecords: records } }));
        }
        response.end(JSON.stringify({ data: { processingRecords: [{ component: 'om', startTime: 42 }], records: [] } }));
      });
    });
    await new Promise<void>((resolve) => brokenOm.listen(0, '127.0.0.1', resolve));
    const { port } = brokenOm.address() as AddressInfo;
    federation = await startFederation({ deadlineMs: 5_000, gateway: { nodes: { om: `http://127.0.0.1:${port}` } } });
  }, 90_000);
  afterAll(async () => {
    for (const response of unanswered) response.destroy();
    await federation?.stop();
    brokenOm?.close();
  });

  it("lists the other components' records and names the broken partner as unavailable, instead of failing", async () => {
    const token = await federation.issuer.token({ org: VT_ORG, roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1', sub: `vt-${run}` });
    expect((await federation.query(token, HIT_CHECK, { bsn: PERSONS.vtOnly })).status).toBe(200);
    const officer = await federation.issuer.token({ org: VT_ORG, roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined, sub: `fg-${run}` });
    const { status, body } = await federation.query(officer, accessLogDocument({}), { filter: { purpose: 'vt-hit-check' } });
    expect(status).toBe(200);
    expect(body.errors!.map((error) => [error.extensions!['code'], error.extensions!['partner']])).toEqual([['PARTNER_UNAVAILABLE', 'OM']]);
    const components = body.data!.accessLog.edges[0].node.records.map((record: { component: string }) => record.component);
    expect(components).toEqual(expect.arrayContaining(['gateway', 'politie', 'veilig-thuis', 'reclassering']));
    expect(components).not.toContain('om');
    // The officer's own request is on record as answered without OM's part.
    expect(accessRecordsOf(join(federation.dataDir, 'gateway', 'audit.db'), `fg-${run}`).at(-1)).toMatchObject({ decision: 'ALLOW', outcome: 'PARTIAL' });
  });

  it("shows no record a node sends in another component's name, and names that node unavailable", async () => {
    const token = await federation.issuer.token({ org: VT_ORG, roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1', sub: `vt-forged-${run}` });
    expect((await federation.query(token, HIT_CHECK, { bsn: PERSONS.vtOnly })).status).toBe(200);
    const officer = await federation.issuer.token({ org: VT_ORG, roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined, sub: `fg-forged-${run}` });
    impersonating = true;
    try {
      const { status, body } = await federation.query(officer, accessLogDocument({}), { filter: { purpose: 'vt-hit-check' } });
      expect(status).toBe(200);
      expect(body.errors!.map((error) => [error.extensions!['code'], error.extensions!['partner']])).toEqual([['PARTNER_UNAVAILABLE', 'OM']]);
      const records = body.data!.accessLog.edges.flatMap((edge: { node: { records: { spanId: string; component: string }[] } }) => edge.node.records);
      expect(records.length).toBeGreaterThan(0);
      expect(records.filter((record: { spanId: string }) => record.spanId === 'f'.repeat(16))).toEqual([]);
    } finally {
      impersonating = false;
    }
  });

  it('takes the records of a node that times them to the microsecond, as RFC 3339 allows', async () => {
    const token = await federation.issuer.token({ org: VT_ORG, roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1', sub: `vt-fine-${run}` });
    expect((await federation.query(token, HIT_CHECK, { bsn: PERSONS.vtOnly })).status).toBe(200);
    const officer = await federation.issuer.token({ org: VT_ORG, roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined, sub: `fg-fine-${run}` });
    finelyTimed = true;
    try {
      const { status, body } = await federation.query(officer, accessLogDocument({}), { filter: { requesterSub: `vt-fine-${run}`, from: '2026-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' } });
      expect(status).toBe(200);
      expect(body.errors).toBeUndefined();
      expect(body.data!.accessLog.edges[0].node.records.filter((record: { component: string }) => record.component === 'om')).toHaveLength(1);
    } finally {
      finelyTimed = false;
    }
  });

  it("ends a page where reading stopped when the deadline passes while the officer's node is silent, and its cursor goes on from there", async () => {
    // More requests OM was asked about, and did not answer, than one batch of the log holds: each
    // may be one OM's officer should see, which only OM's own records could say.
    const worker = await federation.issuer.token({ org: VT_ORG, roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1', sub: `vt-many-${run}` });
    const subjects = Array.from({ length: 110 }, (_, i) => completeBsn(String(50_000_000 + i * 7919))).filter((bsn): bsn is string => bsn !== null);
    for (const bsn of subjects.slice(0, 105)) expect((await federation.query(worker, HIT_CHECK, { bsn })).status).toBe(200);

    const omOfficer = await federation.issuer.token({ org: 'om', roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined, sub: `om-officer-${run}` });
    silentOnTraces = true;
    const first = await federation.query(omOfficer, accessLogDocument({ first: true }), { filter: { purpose: 'vt-hit-check' }, first: 5 });
    silentOnTraces = false;
    expect(first.status).toBe(200);
    // Marked: what is missing here are requests, not parts of timelines.
    expect(first.body.errors!.map((error) => [error.extensions!['code'], error.extensions!['partner'], error.extensions!['requestsUnchecked']])).toContainEqual([
      'PARTNER_UNAVAILABLE',
      'OM',
      true,
    ]);
    expect(first.body.data!.accessLog.edges).toEqual([]);
    // Not the end of the log: the reading stopped at the deadline.
    expect(first.body.data!.accessLog.pageInfo).toEqual({ hasNextPage: true, endCursor: expect.any(String) });

    const next = await federation.query(omOfficer, accessLogDocument({ first: true, after: true }), {
      filter: { purpose: 'vt-hit-check' },
      first: 5,
      after: first.body.data!.accessLog.pageInfo.endCursor,
    });
    expect(next.status).toBe(200);
    expect(next.body.data!.accessLog.pageInfo.hasNextPage).toBe(false);
  }, 60_000);
});
