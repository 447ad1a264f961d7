import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import {
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLSchema,
  buildSchema,
  getNamedType,
  isObjectType,
  parse,
  validate,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayConfig } from '../gateway/config.ts';
import { type RunningGateway, startGateway } from '../gateway/start.ts';
import { NODE_IDS, type NodeId } from '../lib/partners.ts';
import { AREA, AT, PERSONS } from './support/fixtures.ts';
import { type Federation, type GraphQLBody, startFederation } from './support/federation.ts';
import { inBatches, nodeCallCounts, nodeCallSubjects } from './support/node-calls.ts';

// Purpose binding (DESIGN §6, §8): admission (FORBIDDEN, 403) before anything runs, validation
// against the full public schema (GRAPHQL_VALIDATION_FAILED, no suggestions), then every selected
// field inside the purpose (PURPOSE_FORBIDS_FIELD, 403, naming the first field), all before any
// node is called. The expectations below are the contract's table, written out here on purpose:
// they are not read from policies/, so a policy file that drifts from the contract fails the matrix.

// ─── The public schema: the field list is generated from it, never copied by hand. ───────────────

const SCHEMA: GraphQLSchema = buildSchema(readFileSync(fileURLToPath(new URL('../schemas/gateway.graphql', import.meta.url)), 'utf8'));
const QUERY = SCHEMA.getQueryType()!;
const OBJECT_TYPES = Object.values(SCHEMA.getTypeMap()).filter(
  (type): type is GraphQLObjectType => isObjectType(type) && !type.name.startsWith('__'),
);
const fieldsOf = (typeName: string): string[] => Object.keys((SCHEMA.getType(typeName) as GraphQLObjectType).getFields());
const every = (typeName: string, except: string[] = []) => fieldsOf(typeName).filter((field) => !except.includes(field)).map((field) => `${typeName}.${field}`);

// ─── The contract (DESIGN §6 table) ────────────────────────────────────────────────────────────────

interface CallerSpec {
  name: string;
  org: string;
  roles: string[];
}

interface PurposeContract {
  admits(caller: CallerSpec): boolean;
  requireCaseRef: boolean;
  fields: Set<string>;
}

const ACCESS_LOG_TYPES = ['AccessLogConnection', 'AccessLogEdge', 'PageInfo', 'AccessRequest', 'Requester', 'PartnerStatus', 'ProcessingRecord'];

const CONTRACT: Record<string, PurposeContract> = {
  'vt-hit-check': {
    // veilig-thuis-* × vt-medewerker: one of the 25 regional organisations, never a bare "veilig-thuis".
    admits: (c) => /^veilig-thuis-[a-z0-9]+(-[a-z0-9]+)*$/.test(c.org) && c.roles.includes('vt-medewerker'),
    requireCaseRef: true,
    // hitCheck with PartnerHit.contact; nothing about bans.
    fields: new Set(['Query.hitCheck', ...every('HitCheck'), ...every('PartnerHit'), ...every('PartnerContact')]),
  },
  'police-ban-enforcement': {
    admits: (c) => c.org === 'politie' && c.roles.includes('politie-medewerker'),
    requireCaseRef: true,
    // activeBans and contactBanned with every Ban field except area.center and area.radiusMeters;
    // hitCheck statuses without contact.
    fields: new Set([
      'Query.activeBans',
      'Query.contactBanned',
      'Query.hitCheck',
      ...every('BanCheck'),
      ...every('Ban'),
      ...every('BanArea', ['center', 'radiusMeters']),
      ...every('PartnerContact'),
      ...every('PartnerStatus'),
      ...every('ContactBanCheck'),
      ...every('HitCheck'),
      ...every('PartnerHit', ['contact']),
    ]),
  },
  'reclassering-supervision': {
    admits: (c) => c.org === 'reclassering' && c.roles.includes('reclassering-medewerker'),
    requireCaseRef: true,
    fields: new Set([
      'Query.activeBans',
      'Query.contactBanned',
      ...every('BanCheck'),
      ...every('Ban'),
      ...every('BanArea'),
      ...every('GeoPoint'),
      ...every('PartnerContact'),
      ...every('PartnerStatus'),
      ...every('ContactBanCheck'),
    ]),
  },
  'privacy-audit': {
    admits: (c) => c.roles.includes('privacy-officer'),
    requireCaseRef: false,
    fields: new Set(['Query.accessLog', ...ACCESS_LOG_TYPES.flatMap((type) => every(type))]),
  },
};
const UNKNOWN_PURPOSE = 'marketing-analysis';
const PURPOSES = [...Object.keys(CONTRACT), UNKNOWN_PURPOSE];

/** The organisation × role combinations of the fixtures, and mismatched ones. */
const CALLERS: CallerSpec[] = [
  { name: 'Veilig Thuis worker', org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'] },
  { name: 'police officer', org: 'politie', roles: ['politie-medewerker'] },
  { name: 'probation officer', org: 'reclassering', roles: ['reclassering-medewerker'] },
  { name: 'OM employee', org: 'om', roles: ['om-medewerker'] },
  { name: 'police privacy officer', org: 'politie', roles: ['privacy-officer'] },
  { name: 'Veilig Thuis privacy officer', org: 'veilig-thuis-haaglanden', roles: ['privacy-officer'] },
  { name: 'police officer with the privacy-officer role too', org: 'politie', roles: ['politie-medewerker', 'privacy-officer'] },
  { name: 'police org with a Veilig Thuis role (mismatch)', org: 'politie', roles: ['vt-medewerker'] },
  { name: 'probation org with a police role (mismatch)', org: 'reclassering', roles: ['politie-medewerker'] },
  { name: 'Veilig Thuis org with a probation role (mismatch)', org: 'veilig-thuis-haaglanden', roles: ['reclassering-medewerker'] },
];

const admitted = (purpose: string, caller: CallerSpec) => CONTRACT[purpose]?.admits(caller) ?? false;
const caseRefFor = (purpose: string) => (CONTRACT[purpose]?.requireCaseRef === false ? undefined : 'MX-2026-0001');

// ─── One minimal valid document per public field and per root that reaches it ──────────────────────

const ROOT_ARGUMENTS: Record<string, string> = {
  hitCheck: `subject: { bsn: "${PERSONS.subject}" }`,
  activeBans: `subject: { bsn: "${PERSONS.subject}" }, at: "${AT.may2026}", location: { lat: ${AREA.inside.lat}, lon: ${AREA.inside.lon} }`,
  contactBanned: `subject: { bsn: "${PERSONS.subject}" }, counterpart: { bsn: "${PERSONS.victim}" }, at: "${AT.may2026}"`,
  // Every request under this purpose that was allowed carries partner statuses and processing
  // records, so each field below an edge is actually resolved (see the warm-up in beforeAll).
  accessLog: `filter: { purpose: "police-ban-enforcement" }`,
};
/** Which nodes a root field asks (DESIGN §5): hitCheck all four, the ban queries the three that hold bans. */
const ROOT_NODES: Record<string, NodeId[]> = {
  hitCheck: [...NODE_IDS],
  activeBans: ['politie', 'om', 'reclassering'],
  contactBanned: ['politie', 'om', 'reclassering'],
  // Every node is asked for its processing records of the requests on the page, when the page shows them.
  accessLog: [...NODE_IDS],
};
const nodesAsked = (document: FieldDocument): NodeId[] =>
  document.root === 'accessLog' && !document.path.includes('AccessRequest.records') ? [] : ROOT_NODES[document.root]!;

interface FieldDocument {
  /** The coordinate the document exists for. */
  target: string;
  root: string;
  /** Every coordinate the document selects, outermost first (document order). */
  path: string[];
  query: string;
}

/** Shortest chain of fields from a root field's type to `typeName` (breadth first). */
function chainTo(root: GraphQLField<unknown, unknown>, typeName: string): GraphQLField<unknown, unknown>[] | null {
  const start = getNamedType(root.type);
  if (!isObjectType(start)) return null;
  const queue: { type: GraphQLObjectType; chain: GraphQLField<unknown, unknown>[] }[] = [{ type: start, chain: [] }];
  const seen = new Set([start.name]);
  while (queue.length > 0) {
    const { type, chain } = queue.shift()!;
    if (type.name === typeName) return chain;
    for (const field of Object.values(type.getFields())) {
      const next = getNamedType(field.type);
      if (isObjectType(next) && !seen.has(next.name)) {
        seen.add(next.name);
        queue.push({ type: next, chain: [...chain, field] });
      }
    }
  }
  return null;
}

function documentFor(root: GraphQLField<unknown, unknown>, chain: GraphQLField<unknown, unknown>[], leaf: GraphQLField<unknown, unknown> | null): FieldDocument {
  const fields = leaf ? [...chain, leaf] : chain;
  const path = [`Query.${root.name}`];
  let parent = getNamedType(root.type).name;
  for (const field of fields) {
    path.push(`${parent}.${field.name}`);
    parent = getNamedType(field.type).name;
  }
  // An object-typed innermost field is closed with __typename, which selects no further field.
  let selection = isObjectType(getNamedType((fields.at(-1) ?? root).type)) ? '__typename' : '';
  for (const field of [...fields].reverse()) selection = selection ? `${field.name} { ${selection} }` : field.name;
  const args = ROOT_ARGUMENTS[root.name];
  if (args === undefined) throw new Error(`no arguments known for Query.${root.name}: add them to ROOT_ARGUMENTS`);
  return { target: path.at(-1)!, root: root.name, path, query: `{ ${root.name}(${args}) { ${selection} } }` };
}

const FIELD_DOCUMENTS: FieldDocument[] = (() => {
  const documents: FieldDocument[] = [];
  for (const root of Object.values(QUERY.getFields())) {
    documents.push(documentFor(root, [], null));
    for (const type of OBJECT_TYPES) {
      if (type === QUERY) continue;
      const chain = chainTo(root, type.name);
      if (!chain) continue;
      for (const field of Object.values(type.getFields())) documents.push(documentFor(root, chain, field));
    }
  }
  return documents;
})();

// ─── The matrix rows and their expected outcome ────────────────────────────────────────────────────

type Expected = { kind: 'allowed' } | { kind: 'FORBIDDEN' } | { kind: 'PURPOSE_FORBIDS_FIELD'; field: string };

interface Row {
  purpose: string;
  caller: CallerSpec;
  document: FieldDocument;
  expected: Expected;
  /** Unique per row, so that a node's audit log tells exactly which row reached it. */
  sub: string;
  /**
   * The document with an operation name of its own, so that each row's decision is made for that
   * request alone (reusing one document across purposes is tested separately below).
   */
  query: string;
}

function expectationFor(purpose: string, caller: CallerSpec, document: FieldDocument): Expected {
  if (!admitted(purpose, caller)) return { kind: 'FORBIDDEN' };
  const outside = document.path.find((coordinate) => !CONTRACT[purpose]!.fields.has(coordinate));
  return outside ? { kind: 'PURPOSE_FORBIDS_FIELD', field: outside } : { kind: 'allowed' };
}

const ROWS: Row[] = PURPOSES.flatMap((purpose) =>
  CALLERS.flatMap((caller) =>
    FIELD_DOCUMENTS.map((document) => ({
      purpose,
      caller,
      document,
      expected: expectationFor(purpose, caller, document),
      sub: `matrix-${randomUUID()}`,
      query: '',
    })),
  ),
).map((row, index) => ({ ...row, query: `query Row${index} ${row.document.query}` }));

const describeExpected = (expected: Expected) => (expected.kind === 'PURPOSE_FORBIDS_FIELD' ? `PURPOSE_FORBIDS_FIELD ${expected.field}` : expected.kind);
const rowTitle = (row: Row) => `${row.purpose} × ${row.caller.name} × ${row.document.target} via ${row.document.root} → ${describeExpected(row.expected)}`;

/** Follows a document's path through an answer; true when the innermost field was resolved somewhere. */
function resolvedAlong(data: unknown, document: FieldDocument): boolean {
  const names = document.path.map((coordinate) => coordinate.split('.')[1]!);
  let level: unknown[] = [data];
  for (const name of names) {
    const next: unknown[] = [];
    for (const value of level.flat()) {
      if (value && typeof value === 'object' && name in value) next.push((value as Record<string, unknown>)[name]);
    }
    if (next.length === 0) return false;
    level = next;
  }
  return true;
}

interface Answer {
  status: number;
  body: GraphQLBody;
}

const MISSPELT_NEAR_CENTER = `{ activeBans(subject: { bsn: "${PERSONS.subject}" }) { bans { area { centre { lat } } } } }`;

const QUERIES = {
  hitCheck: (bsn: string) => `{ hitCheck(subject: { bsn: "${bsn}" }) { subjectRef partners { partner status contact { organisation unit phone email } } } }`,
  policeBans: `{ activeBans(subject: { bsn: "${PERSONS.subject}" }, at: "${AT.may2026}", location: { lat: ${AREA.inside.lat}, lon: ${AREA.inside.lon} }) {
    subjectRef complete underActiveBan partners { partner status }
    bans { id kind legalBasis imposedBy reportedBy validFrom validUntil conditions notify { organisation unit phone email }
           area { description municipality } protectedPersonRefs electronicMonitoring victimDevice violatedAt } } }`,
  probationBans: `{ activeBans(subject: { bsn: "${PERSONS.subject}" }, at: "${AT.may2026}", location: { lat: ${AREA.outside.lat}, lon: ${AREA.outside.lon} }) {
    bans { id kind area { description municipality center { lat lon } radiusMeters } protectedPersonRefs violatedAt } } }`,
  contactBanned: `{ contactBanned(subject: { bsn: "${PERSONS.subject}" }, counterpart: { bsn: "${PERSONS.victim}" }, at: "${AT.may2026}") { complete banned banIds partners { partner status } } }`,
};

describe('purpose binding at the gateway (DESIGN §6)', () => {
  let federation: Federation;
  const answers = new Map<Row, Answer>();
  let seenByNode: Record<NodeId, Set<string>>;
  let callsBeforeDenials: Record<NodeId, number>;
  let callsAfterDenials: Record<NodeId, number>;

  /** A caller token; `caseRef` given (even as undefined) replaces the purpose's usual case_ref. */
  const tokenFor = (purpose: string, caller: CallerSpec, options: { sub?: string; caseRef?: string | undefined } = {}) =>
    federation.issuer.token({
      sub: options.sub ?? `t-${randomUUID()}`,
      org: caller.org,
      roles: caller.roles,
      purpose,
      case_ref: 'caseRef' in options ? options.caseRef : caseRefFor(purpose),
    });
  const politie = CALLERS[1]!;
  const probation = CALLERS[2]!;
  const vt = CALLERS[0]!;

  beforeAll(async () => {
    // Thousands of requests on a small machine: a generous deadline keeps a slow but healthy node
    // from turning into UNAVAILABLE, which is not what this file is about.
    federation = await startFederation({ deadlineMs: 20_000 });
    // Police requests exist before the matrix runs, so that every privacy officer's access log has
    // entries whose fields are actually resolved: politie is the requester of both; OM and probation
    // provided bans, Veilig Thuis provided the existence of its record in the hit check.
    const warmUp = await Promise.all([
      federation.query(await tokenFor('police-ban-enforcement', politie), QUERIES.policeBans),
      federation.query(await tokenFor('police-ban-enforcement', politie), `{ hitCheck(subject: { bsn: "${PERSONS.subject}" }) { anyHit } }`),
    ]);
    for (const { status } of warmUp) expect(status).toBe(200);

    const run = (rows: Row[]) =>
      inBatches(
        rows.map((row) => async () => {
          const token = await tokenFor(row.purpose, row.caller, { sub: row.sub });
          answers.set(row, await federation.query(token, row.query));
        }),
        8,
      );
    // Allowed rows first; then, with every node quiet, the denied ones, counted before and after.
    await run(ROWS.filter((row) => row.expected.kind === 'allowed'));
    callsBeforeDenials = nodeCallCounts(federation.dataDir);
    await run(ROWS.filter((row) => row.expected.kind !== 'allowed'));
    callsAfterDenials = nodeCallCounts(federation.dataDir);
    seenByNode = nodeCallSubjects(federation.dataDir);
  }, 420_000);
  afterAll(() => federation?.stop());

  const nodesThatSaw = (sub: string) => NODE_IDS.filter((node) => seenByNode[node].has(sub));

  describe('the field list comes from schemas/gateway.graphql', () => {
    it('covers every field of every public object type, each reachable from some root', () => {
      const all = OBJECT_TYPES.flatMap((type) => fieldsOf(type.name).map((field) => `${type.name}.${field}`));
      expect(all.length).toBeGreaterThan(60);
      expect(new Set(FIELD_DOCUMENTS.map((d) => d.target))).toEqual(new Set(all));
      // Fields reached from several roots are asked through each of them.
      expect(FIELD_DOCUMENTS.filter((d) => d.target === 'PartnerStatus.status').map((d) => d.root).sort()).toEqual(['accessLog', 'activeBans', 'contactBanned']);
    });

    it('the contract names only fields that exist in the schema', () => {
      const all = new Set(OBJECT_TYPES.flatMap((type) => fieldsOf(type.name).map((field) => `${type.name}.${field}`)));
      for (const contract of Object.values(CONTRACT)) for (const coordinate of contract.fields) expect(all).toContain(coordinate);
    });

    it('every matrix document validates against the full public schema (a denial is never a typo)', () => {
      for (const document of FIELD_DOCUMENTS) expect(validate(SCHEMA, parse(document.query)), document.query).toEqual([]);
    });
  });

  describe('every purpose × caller × field', () => {
    it.each(ROWS.map((row) => [rowTitle(row), row] as const))('%s', (_title, row) => {
      const answer = answers.get(row)!;
      const { status, body } = answer;
      if (row.expected.kind === 'allowed') {
        expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
        expect(status).toBe(200);
        expect(body.data?.[row.document.root]).toBeTruthy();
        // The field was actually resolved, not merely admitted.
        expect(resolvedAlong(body.data, row.document)).toBe(true);
        // The nodes the root asks received this very request (the observation below is real).
        expect(nodesThatSaw(row.sub)).toEqual(nodesAsked(row.document));
        return;
      }
      expect(status).toBe(403);
      expect(body.data ?? null).toBeNull();
      expect(body.errors).toHaveLength(1);
      const error = body.errors![0]!;
      expect(error.extensions?.['code']).toBe(row.expected.kind);
      if (row.expected.kind === 'PURPOSE_FORBIDS_FIELD') {
        expect(error.extensions?.['field']).toBe(row.expected.field);
        expect(error.extensions?.['purpose']).toBe(row.purpose);
      }
      // Refused before any node was called.
      expect(nodesThatSaw(row.sub)).toEqual([]);
    });

    it('no node received a single call while the denied rows ran', () => {
      expect(ROWS.filter((row) => row.expected.kind !== 'allowed').length).toBeGreaterThan(1000);
      expect(callsAfterDenials).toEqual(callsBeforeDenials);
    });

    it('the matrix holds allowed rows for each purpose, and each kind of denial', () => {
      for (const purpose of Object.keys(CONTRACT)) expect(ROWS.some((r) => r.purpose === purpose && r.expected.kind === 'allowed'), purpose).toBe(true);
      expect(ROWS.some((r) => r.expected.kind === 'PURPOSE_FORBIDS_FIELD')).toBe(true);
      expect(ROWS.filter((r) => r.purpose === UNKNOWN_PURPOSE).every((r) => r.expected.kind === 'FORBIDDEN')).toBe(true);
    });
  });

  describe('admission: organisation patterns and roles', () => {
    // One document per purpose; the field matrix above already covers the fields.
    const DOCUMENT: Record<string, string> = {
      'vt-hit-check': `{ hitCheck(subject: { bsn: "${PERSONS.unknown}" }) { complete } }`,
      'police-ban-enforcement': `{ activeBans(subject: { bsn: "${PERSONS.unknown}" }) { complete } }`,
      'reclassering-supervision': `{ activeBans(subject: { bsn: "${PERSONS.unknown}" }) { complete } }`,
      'privacy-audit': `{ accessLog(filter: { purpose: "vt-hit-check" }) { pageInfo { hasNextPage } } }`,
    };
    const cases: [string, string, CallerSpec, boolean][] = [
      ['vt-hit-check', 'another Veilig Thuis region', { name: '', org: 'veilig-thuis-haaglanden', roles: ['vt-medewerker'] }, true],
      ['vt-hit-check', 'a region with a compound name', { name: '', org: 'veilig-thuis-zuid-holland-zuid', roles: ['vt-medewerker'] }, true],
      ['vt-hit-check', 'the bare organisation "veilig-thuis" (no region)', { name: '', org: 'veilig-thuis', roles: ['vt-medewerker'] }, false],
      ['vt-hit-check', 'an organisation that only starts with "veilig-thuis"', { name: '', org: 'veilig-thuisregio', roles: ['vt-medewerker'] }, false],
      ['vt-hit-check', 'a Veilig Thuis privacy officer', { name: '', org: 'veilig-thuis-haaglanden', roles: ['privacy-officer'] }, false],
      ['vt-hit-check', 'a role that differs only in case', { name: '', org: 'veilig-thuis-haaglanden', roles: ['VT-medewerker'] }, false],
      ['police-ban-enforcement', 'a police sub-organisation', { name: '', org: 'politie-eenheid-rotterdam', roles: ['politie-medewerker'] }, false],
      ['police-ban-enforcement', 'the OM with a police role', { name: '', org: 'om', roles: ['politie-medewerker'] }, false],
      ['reclassering-supervision', 'the police with a probation role', { name: '', org: 'politie', roles: ['reclassering-medewerker'] }, false],
      ['privacy-audit', 'an OM privacy officer', { name: '', org: 'om', roles: ['privacy-officer'] }, true],
      ['privacy-audit', 'a probation privacy officer', { name: '', org: 'reclassering', roles: ['privacy-officer'] }, true],
      ['privacy-audit', 'a privacy officer of an organisation outside the network', { name: '', org: 'gemeente-rotterdam', roles: ['privacy-officer'] }, true],
      ['privacy-audit', 'an OM employee without the privacy-officer role', { name: '', org: 'om', roles: ['om-medewerker'] }, false],
      ['VT-HIT-CHECK', 'a purpose id in the wrong case', { name: '', org: 'veilig-thuis-haaglanden', roles: ['vt-medewerker'] }, false],
    ];

    it.each(cases.map(([purpose, name, caller, admits]) => [purpose, name, admits, caller] as const))('%s for %s: admitted %s', async (purpose, _name, expectedAdmitted, caller) => {
      const sub = `admission-${randomUUID()}`;
      const token = await tokenFor(purpose, caller, { sub, caseRef: 'MX-2026-0002' });
      const { status, body } = await federation.query(token, DOCUMENT[purpose] ?? DOCUMENT['vt-hit-check']!);
      if (expectedAdmitted) {
        expect(body.errors).toBeUndefined();
        expect(status).toBe(200);
        expect(body.data).toBeTruthy();
      } else {
        expect(status).toBe(403);
        expect(body.errors![0]!.extensions?.['code']).toBe('FORBIDDEN');
        expect(body.data ?? null).toBeNull();
        expect(NODE_IDS.filter((node) => nodeCallSubjects(federation.dataDir)[node].has(sub))).toEqual([]);
      }
    });
  });

  describe('case_ref', () => {
    const OWN: [string, CallerSpec, string][] = [
      ['vt-hit-check', vt, `{ hitCheck(subject: { bsn: "${PERSONS.subject}" }) { anyHit } }`],
      ['police-ban-enforcement', politie, `{ activeBans(subject: { bsn: "${PERSONS.subject}" }) { underActiveBan } }`],
      ['reclassering-supervision', probation, `{ activeBans(subject: { bsn: "${PERSONS.subject}" }) { underActiveBan } }`],
    ];
    const MALFORMED: [string, string | undefined][] = [
      ['missing', undefined],
      ['empty', ''],
      ['starting with a dash', '-VT-2026-1'],
      ['with a space', 'VT 2026 1'],
      ['with a leading space', ' VT-2026-1'],
      ['with a newline', 'VT-2026-1\n'],
      ['with a quote and semicolon', "VT-1';--"],
      ['with a non-ASCII letter', 'VT-2026-ä'],
      ['of 65 characters', `A${'1'.repeat(64)}`],
    ];
    const cases = OWN.flatMap(([purpose, caller, query]) => MALFORMED.map(([what, caseRef]) => [purpose, what, caller, query, caseRef] as const));

    it.each(cases)('%s with a case_ref %s is FORBIDDEN before any node is called', async (purpose, _what, caller, query, caseRef) => {
      const before = nodeCallCounts(federation.dataDir);
      const sub = `caseref-${randomUUID()}`;
      const { status, body } = await federation.query(await tokenFor(purpose, caller, { sub, caseRef }), query);
      expect(status).toBe(403);
      expect(body.errors![0]!.extensions?.['code']).toBe('FORBIDDEN');
      expect(body.data ?? null).toBeNull();
      expect(nodeCallCounts(federation.dataDir)).toEqual(before);
      expect(NODE_IDS.filter((node) => nodeCallSubjects(federation.dataDir)[node].has(sub))).toEqual([]);
    });

    it.each(OWN.flatMap(([purpose, caller, query]) => [
      [purpose, 'a single character', caller, query, 'A'],
      [purpose, 'of 64 characters with . _ / -', caller, query, `A${'b._/-'.repeat(12)}abc`],
    ] as const))('%s with a well-formed case_ref (%s) is admitted', async (purpose, _what, caller, query, caseRef) => {
      expect(caseRef.length === 1 || caseRef.length === 64).toBe(true);
      const { status, body } = await federation.query(await tokenFor(purpose, caller, { caseRef }), query);
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
    });

    it.each([
      ['without a case_ref', undefined],
      ['with a case_ref it does not need', 'PA-2026-7'],
    ])('privacy-audit is admitted %s', async (_what, caseRef) => {
      const officer = CALLERS[4]!;
      const { status, body } = await federation.query(
        await tokenFor('privacy-audit', officer, { caseRef }),
        `{ accessLog(filter: { subjectBsn: "${PERSONS.subject}" }) { edges { node { purpose decision } } } }`,
      );
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      expect(body.data!.accessLog.edges.length).toBeGreaterThan(0);
    });
  });

  describe('what each purpose sees (the DESIGN §6 table, on real answers)', () => {
    it('police get every Ban field and violatedAt, but never the area centre or radius', async () => {
      const { status, body } = await federation.query(await tokenFor('police-ban-enforcement', politie), QUERIES.policeBans);
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      const bans = body.data!.activeBans.bans as Record<string, any>[];
      const b2 = bans.find((ban) => ban.id === 'PN-10-000002-25/1')!;
      expect(b2.area).toEqual({ description: '5 km rond woning slachtoffer', municipality: 'Rotterdam' });
      // Inside the 5 km circle: the node computed it, so the centre never had to leave.
      expect(b2.violatedAt).toBe(true);
      const text = JSON.stringify(body);
      for (const forbidden of ['center', 'radiusMeters', String(AREA.center.lat), String(AREA.center.lon), String(AREA.radiusMeters)]) {
        expect(text).not.toContain(forbidden);
      }
    });

    it.each([
      ['BanArea.center', 'center { lat lon }'],
      ['BanArea.radiusMeters', 'radiusMeters'],
    ])('police asking for %s are refused as a whole, naming the field', async (field, selection) => {
      const before = nodeCallCounts(federation.dataDir);
      const query = `{ activeBans(subject: { bsn: "${PERSONS.subject}" }, at: "${AT.may2026}") { complete bans { id area { description ${selection} } } } }`;
      const { status, body } = await federation.query(await tokenFor('police-ban-enforcement', politie), query);
      expect(status).toBe(403);
      expect(body.data ?? null).toBeNull();
      expect(body.errors).toEqual([
        expect.objectContaining({ extensions: expect.objectContaining({ code: 'PURPOSE_FORBIDS_FIELD', field, purpose: 'police-ban-enforcement' }) }),
      ]);
      expect(JSON.stringify(body)).not.toContain('woning');
      expect(nodeCallCounts(federation.dataDir)).toEqual(before);
    });

    it('names the first forbidden field in document order, also through aliases and fragments', async () => {
      const token = await tokenFor('police-ban-enforcement', politie);
      const ask = (selection: string, fragments = '') =>
        federation.query(token, `{ activeBans(subject: { bsn: "${PERSONS.subject}" }) { bans { ${selection} } } } ${fragments}`);
      const fieldOf = (answer: Answer) => [answer.status, answer.body.errors?.[0]?.extensions?.['field']];
      expect(fieldOf(await ask('area { center { lat } radiusMeters }'))).toEqual([403, 'BanArea.center']);
      expect(fieldOf(await ask('area { radiusMeters center { lat } }'))).toEqual([403, 'BanArea.radiusMeters']);
      expect(fieldOf(await ask('area { home: center { lat } }'))).toEqual([403, 'BanArea.center']);
      expect(fieldOf(await ask('area { ... on BanArea { radiusMeters } }'))).toEqual([403, 'BanArea.radiusMeters']);
      expect(fieldOf(await ask('area { ...Where }', 'fragment Where on BanArea { description center { lon } }'))).toEqual([403, 'BanArea.center']);
    });

    it('probation supervision gets the area centre and radius', async () => {
      const { status, body } = await federation.query(await tokenFor('reclassering-supervision', probation), QUERIES.probationBans);
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      const b2 = (body.data!.activeBans.bans as Record<string, any>[]).find((ban) => ban.id === 'PN-10-000002-25/1')!;
      expect(b2.area).toEqual({ description: '5 km rond woning slachtoffer', municipality: 'Rotterdam', center: AREA.center, radiusMeters: AREA.radiusMeters });
      expect(b2.violatedAt).toBe(false);
    });

    it('PartnerHit.contact is released to Veilig Thuis only; the police get statuses', async () => {
      const [vtAnswer, policeStatuses, policeContact] = await Promise.all([
        federation.query(await tokenFor('vt-hit-check', vt), QUERIES.hitCheck(PERSONS.subject)),
        federation.query(await tokenFor('police-ban-enforcement', politie), `{ hitCheck(subject: { bsn: "${PERSONS.subject}" }) { anyHit partners { partner status } } }`),
        federation.query(await tokenFor('police-ban-enforcement', politie), QUERIES.hitCheck(PERSONS.subject)),
      ]);
      expect(vtAnswer.status).toBe(200);
      const contacts = Object.fromEntries((vtAnswer.body.data!.hitCheck.partners as any[]).map((p) => [p.partner, p.contact?.organisation]));
      expect(contacts).toMatchObject({ POLITIE: 'Politie Eenheid Rotterdam', VEILIG_THUIS: 'Veilig Thuis Rotterdam Rijnmond' });

      expect(policeStatuses.body.errors).toBeUndefined();
      expect(policeStatuses.body.data!.hitCheck.partners).toEqual([
        { partner: 'POLITIE', status: 'HIT' },
        { partner: 'VEILIG_THUIS', status: 'HIT' },
        { partner: 'OM', status: 'HIT' },
        { partner: 'RECLASSERING', status: 'HIT' },
      ]);

      expect(policeContact.status).toBe(403);
      expect(policeContact.body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'PartnerHit.contact', purpose: 'police-ban-enforcement' });
      expect(JSON.stringify(policeContact.body)).not.toContain('Veilig Thuis Rotterdam');
    });

    it.each([
      ['reclassering-supervision', CALLERS[2]!],
      ['privacy-audit', CALLERS[4]!],
    ])('%s may not ask hitCheck at all', async (purpose, caller) => {
      const { status, body } = await federation.query(await tokenFor(purpose, caller), QUERIES.hitCheck(PERSONS.subject));
      expect(status).toBe(403);
      expect(body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'Query.hitCheck', purpose });
    });

    it('protected persons appear only as subject references, never as BSNs', async () => {
      const [police, probationAnswer, victimCheck] = await Promise.all([
        federation.query(await tokenFor('police-ban-enforcement', politie), QUERIES.policeBans),
        federation.query(await tokenFor('reclassering-supervision', probation), QUERIES.probationBans),
        // The victim's own reference, as the gateway gives it for a lookup of that person.
        federation.query(await tokenFor('vt-hit-check', vt), QUERIES.hitCheck(PERSONS.victim)),
      ]);
      const victimRef = victimCheck.body.data!.hitCheck.subjectRef as string;
      expect(victimRef).toMatch(/^[A-Za-z0-9_-]{22}$/);
      for (const answer of [police, probationAnswer]) {
        expect(answer.status).toBe(200);
        const bans = answer.body.data!.activeBans.bans as { id: string; protectedPersonRefs: string[] }[];
        expect(bans.find((ban) => ban.id === 'PN-10-000001-25/1')!.protectedPersonRefs).toEqual([victimRef]);
        const text = JSON.stringify(answer.body);
        for (const bsn of Object.values(PERSONS)) expect(text).not.toContain(bsn);
      }
    });

    it('contactBanned matches the protected person at the nodes, without revealing them', async () => {
      const { status, body } = await federation.query(await tokenFor('police-ban-enforcement', politie), QUERIES.contactBanned);
      expect(status).toBe(200);
      expect(body.data!.contactBanned).toMatchObject({ complete: true, banned: true });
      expect(JSON.stringify(body)).not.toContain(PERSONS.victim);
    });

    it('Veilig Thuis sees nothing about bans', async () => {
      const { status, body } = await federation.query(await tokenFor('vt-hit-check', vt), QUERIES.contactBanned);
      expect(status).toBe(403);
      expect(body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'Query.contactBanned', purpose: 'vt-hit-check' });
    });
  });

  describe('a decision belongs to its own request', () => {
    // One document, byte for byte, from callers with different purposes: each gets the decision of
    // its own purpose, whatever was decided for the same document before.
    const sameDocument = (name: string) =>
      `query ${name} { activeBans(subject: { bsn: "${PERSONS.subject}" }, at: "${AT.may2026}") { bans { id area { center { lat lon } } } } }`;

    it('a refusal is never replayed to a later caller whose purpose allows the document', async () => {
      const query = sameDocument('DeniedFirst');
      const police = await federation.query(await tokenFor('police-ban-enforcement', politie), query);
      expect(police.status).toBe(403);
      expect(police.body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'BanArea.center', purpose: 'police-ban-enforcement' });

      const supervision = await federation.query(await tokenFor('reclassering-supervision', probation), query);
      expect(supervision.body.errors).toBeUndefined();
      expect(supervision.status).toBe(200);
      expect(supervision.body.data!.activeBans.bans.find((ban: { id: string }) => ban.id === 'PN-10-000002-25/1').area.center).toEqual(AREA.center);

      const hitCheckOnly = await federation.query(await tokenFor('vt-hit-check', vt), query);
      expect(hitCheckOnly.status).toBe(403);
      expect(hitCheckOnly.body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'Query.activeBans', purpose: 'vt-hit-check' });
    });

    it('an allowed answer is never replayed to a later caller whose purpose forbids the document', async () => {
      const query = sameDocument('AllowedFirst');
      const supervision = await federation.query(await tokenFor('reclassering-supervision', probation), query);
      expect(supervision.status).toBe(200);
      const before = nodeCallCounts(federation.dataDir);
      const police = await federation.query(await tokenFor('police-ban-enforcement', politie), query);
      expect(police.status).toBe(403);
      expect(police.body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'BanArea.center', purpose: 'police-ban-enforcement' });
      expect(JSON.stringify(police.body)).not.toContain(String(AREA.center.lat));
      expect(nodeCallCounts(federation.dataDir)).toEqual(before);
    });
  });

  describe('validation against the full public schema, without suggestions', () => {
    // Each with the names a suggestion would have revealed: graphql-js suggests close matches from
    // the full schema, including fields outside the caller's purpose.
    const MISSPELT: [string, string, string[]][] = [
      // "centre" is one letter from BanArea.center, a field outside the police purpose.
      ['a field near a field outside the purpose', MISSPELT_NEAR_CENTER, ['"center"']],
      ['a root field', `{ hitChek(subject: { bsn: "${PERSONS.subject}" }) { anyHit } }`, ['"hitCheck"']],
      ['an argument', `{ activeBans(subjct: { bsn: "${PERSONS.subject}" }) { complete } }`, []],
      ['an input field', `{ activeBans(subject: { bssn: "${PERSONS.subject}" }) { complete } }`, ['"bsn"']],
      ['a type condition', `{ activeBans(subject: { bsn: "${PERSONS.subject}" }) { bans { ... on Bann { id } } } }`, ['"Ban"']],
      ['a field of a ban', `{ activeBans(subject: { bsn: "${PERSONS.subject}" }) { bans { violatedat } } }`, ['"violatedAt"']],
    ];

    it.each(MISSPELT)('%s is GRAPHQL_VALIDATION_FAILED without "Did you mean", and no node is asked', async (_what, query, hints) => {
      const before = nodeCallCounts(federation.dataDir);
      const { body } = await federation.query(await tokenFor('police-ban-enforcement', politie), query);
      expect(body.data ?? null).toBeNull();
      expect(body.errors!.length).toBeGreaterThan(0);
      expect(body.errors!.every((error) => error.extensions?.['code'] === 'GRAPHQL_VALIDATION_FAILED')).toBe(true);
      const text = JSON.stringify(body);
      for (const hint of ['Did you mean', ...hints]) expect(text).not.toContain(hint);
      expect(nodeCallCounts(federation.dataDir)).toEqual(before);
    });

    it('validation comes before the purpose check: a typo next to a forbidden field is a validation failure', async () => {
      const query = `{ activeBans(subject: { bsn: "${PERSONS.subject}" }) { bans { area { center { lat } descripton } } } }`;
      const { body } = await federation.query(await tokenFor('police-ban-enforcement', politie), query);
      expect(body.errors![0]!.extensions?.['code']).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(JSON.stringify(body)).not.toContain('Did you mean');
    });

    it('admission comes before validation: a caller outside the purpose gets FORBIDDEN even for a misspelt document', async () => {
      const { status, body } = await federation.query(await tokenFor('police-ban-enforcement', vt), MISSPELT_NEAR_CENTER);
      expect(status).toBe(403);
      expect(body.errors![0]!.extensions?.['code']).toBe('FORBIDDEN');
    });

    // DESIGN §8: a request that fails as a whole gets its status whatever the Accept header, and
    // GRAPHQL_VALIDATION_FAILED is 400.
    it.each([
      ['no Accept header', {}],
      ['Accept: application/json', { accept: 'application/json' }],
      ['Accept: application/graphql-response+json', { accept: 'application/graphql-response+json' }],
    ])('a misspelt field is answered with HTTP 400 (%s)', async (_what, headers) => {
      const { status, body } = await federation.query(await tokenFor('police-ban-enforcement', politie), MISSPELT_NEAR_CENTER, undefined, headers);
      expect(body.errors![0]!.extensions?.['code']).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(status).toBe(400);
    });
  });

  describe('introspection', () => {
    let devGateway: RunningGateway;
    let devDataDir: string;

    beforeAll(async () => {
      // A second gateway in dev mode in front of the same nodes, with the same signing and
      // subject-reference keys, so it is the same network seen through dev mode.
      devDataDir = mkdtempSync(join(tmpdir(), 'soh-dev-gateway-'));
      mkdirSync(join(devDataDir, 'gateway'));
      cpSync(join(federation.dataDir, 'gateway', 'keys'), join(devDataDir, 'gateway', 'keys'), { recursive: true });
      cpSync(join(federation.dataDir, 'gateway', 'subject-ref.key'), join(devDataDir, 'gateway', 'subject-ref.key'));
      devGateway = await startGateway(
        gatewayConfig.parse({
          port: 0,
          dataDir: devDataDir,
          policyDir: fileURLToPath(new URL('../policies/', import.meta.url)),
          nodes: Object.fromEntries(NODE_IDS.map((id) => [id, federation.nodes[id].url])),
          issuers: [{ issuer: federation.issuer.issuer, orgs: federation.issuer.orgs, jwksFile: federation.issuer.jwksFile }],
          dev: true,
        }),
      );
    });
    afterAll(async () => {
      await devGateway?.close();
      if (devDataDir) rmSync(devDataDir, { recursive: true, force: true });
    });

    const devQuery = async (token: string, query: string) => {
      const response = await fetch(`${devGateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query }),
      });
      return { status: response.status, body: (await response.json()) as GraphQLBody };
    };

    const SCHEMA_QUERY = '{ __schema { queryType { name } types { name kind fields { name } } } }';
    const OWN_CALLER: Record<string, CallerSpec> = {
      'vt-hit-check': vt,
      'police-ban-enforcement': politie,
      'reclassering-supervision': probation,
      'privacy-audit': CALLERS[4]!,
    };

    it.each(Object.keys(CONTRACT))('in dev mode, %s sees exactly its own fields', async (purpose) => {
      const { status, body } = await devQuery(await tokenFor(purpose, OWN_CALLER[purpose]!), SCHEMA_QUERY);
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      const types = body.data!.__schema.types as { name: string; kind: string; fields: { name: string }[] | null }[];
      const visible = types
        .filter((type) => type.kind === 'OBJECT' && !type.name.startsWith('__'))
        .flatMap((type) => type.fields!.map((field) => `${type.name}.${field.name}`));
      expect(new Set(visible)).toEqual(CONTRACT[purpose]!.fields);
    });

    it('in dev mode, the police see BanArea without center and radiusMeters, and no access log types', async () => {
      const { body } = await devQuery(
        await tokenFor('police-ban-enforcement', politie),
        '{ area: __type(name: "BanArea") { fields { name } } geo: __type(name: "GeoPoint") { name } log: __type(name: "AccessRequest") { name } }',
      );
      expect(body.errors).toBeUndefined();
      expect(body.data!.area.fields.map((f: { name: string }) => f.name)).toEqual(['description', 'municipality']);
      expect(body.data!.geo).toBeNull();
      expect(body.data!.log).toBeNull();
    });

    it('in dev mode, a misspelt field still gets no suggestion', async () => {
      const { body } = await devQuery(await tokenFor('police-ban-enforcement', politie), MISSPELT_NEAR_CENTER);
      expect(body.errors![0]!.extensions?.['code']).toBe('GRAPHQL_VALIDATION_FAILED');
      const text = JSON.stringify(body);
      expect(text).not.toContain('Did you mean');
      expect(text).not.toContain('"center"');
    });

    it('in dev mode, introspection under an unknown purpose is FORBIDDEN', async () => {
      const { status, body } = await devQuery(await tokenFor(UNKNOWN_PURPOSE, politie), SCHEMA_QUERY);
      expect(status).toBe(403);
      expect(body.errors![0]!.extensions?.['code']).toBe('FORBIDDEN');
      expect(body.data ?? null).toBeNull();
    });

    it.each([
      ['__schema', SCHEMA_QUERY],
      ['__type', '{ __type(name: "Ban") { fields { name } } }'],
      ['__schema next to a data field', `{ activeBans(subject: { bsn: "${PERSONS.subject}" }) { complete } __schema { types { name } } }`],
    ])('outside dev mode, introspection (%s) is refused and reveals nothing', async (_what, query) => {
      const before = nodeCallCounts(federation.dataDir);
      const { body } = await federation.query(await tokenFor('police-ban-enforcement', politie), query);
      expect(body.data ?? null).toBeNull();
      expect(body.errors!.length).toBeGreaterThan(0);
      expect(body.errors![0]!.extensions?.['code']).toBe('GRAPHQL_VALIDATION_FAILED');
      const text = JSON.stringify(body);
      for (const name of ['BanArea', 'GeoPoint', 'AccessRequest', 'radiusMeters']) expect(text).not.toContain(name);
      expect(nodeCallCounts(federation.dataDir)).toEqual(before);
    });
  });
});
