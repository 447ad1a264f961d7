import { safeMessage } from '../lib/graphql/error-contract.ts';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSONS } from './support/fixtures.ts';
import { type Federation, type GraphQLBody, startFederation } from './support/federation.ts';
import { accessRecordsOf, nodeTokenMinter } from './support/node-calls.ts';
import { MAX_REQUEST_BYTES } from '../lib/graphql/request-body.ts';

// DESIGN §8: a request that fails as a whole gets the contract's code and HTTP status, whatever
// the Accept header, with a message that never quotes the input (a BSN) and never a stack trace.
// Every refused request is still audited (§7).

const HIT_CHECK = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { complete anyHit } }`;

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: GraphQLBody;
}

/** Media types a client may ask for: whatever it asks, the answer is JSON with the contract's status. */
const ACCEPTS = ['application/json', 'application/graphql-response+json', '*/*', 'text/html', 'application/xml', 'text/event-stream', 'multipart/mixed'];

interface PostOptions {
  method?: string;
  accept?: string;
  /** The body's Content-Type; null sends none. */
  contentType?: string | null;
  chunked?: boolean;
}

/** Posts `body` with its Content-Length, or, `chunked`, as a stream without one. */
async function post(url: string, token: string | null, body: string, init: PostOptions = {}): Promise<Answer> {
  const contentType = init.contentType === undefined ? 'application/json' : init.contentType;
  const response = await fetch(`${url}/graphql`, {
    method: init.method ?? 'POST',
    headers: {
      ...(contentType ? { 'content-type': contentType } : {}),
      ...(init.accept ? { accept: init.accept } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    // Bytes, not a string: fetch would give a string body a Content-Type of its own.
    ...(init.method === 'GET' ? {} : init.chunked ? { body: inChunks(body), duplex: 'half' } : { body: new TextEncoder().encode(body) }),
  } as RequestInit);
  const text = await response.text();
  expect(response.headers.get('content-type')).toMatch(/^application\/(graphql-response\+)?json\b/);
  return { status: response.status, headers: response.headers, text, body: text ? (JSON.parse(text) as GraphQLBody) : {} };
}

function inChunks(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(offset, (offset += 16 * 1024)));
    },
  });
}

/** A hit check padded past the request body limit with an unused variable. */
const oversized = (bsn: string) => JSON.stringify({ query: HIT_CHECK, variables: { bsn, padding: 'x'.repeat(MAX_REQUEST_BYTES) } });

/** What every whole-request failure must look like: one error, the code, the status, nothing leaked. */
function expectRefused(answer: Answer, code: string, status: number) {
  expect(answer.status).toBe(status);
  expect(answer.body.data ?? null).toBeNull();
  expect(answer.body.errors!.map((error) => error.extensions?.['code'])).toEqual([code]);
  expect(answer.text).not.toContain(PERSONS.subject);
  expect(answer.text).not.toMatch(/\bat \S+:\d+|node_modules|\.ts\b/);
}

describe('the error contract (DESIGN §8)', () => {
  let federation: Federation;

  beforeAll(async () => {
    federation = await startFederation();
  }, 60_000);
  afterAll(() => federation?.stop());

  describe('at the gateway', () => {
    const bsn = PERSONS.subject;
    const cases: [string, string, string, number][] = [
      ['a body that is not JSON', `{"query": "{ hitCheck(subject: {bsn: \\"${bsn}\\"}) { anyHit } }"`, 'GRAPHQL_PARSE_FAILED', 400],
      ['a body that is a JSON array of BSNs', `["${bsn}"]`, 'GRAPHQL_PARSE_FAILED', 400],
      ['a body that is a bare BSN', bsn, 'GRAPHQL_PARSE_FAILED', 400],
      ['a body without a query', JSON.stringify({ variables: { bsn } }), 'GRAPHQL_PARSE_FAILED', 400],
      ['a body with an unknown parameter named by a BSN', JSON.stringify({ query: HIT_CHECK, [bsn]: 1 }), 'GRAPHQL_PARSE_FAILED', 400],
      ['a body with an unknown parameter quoting a BSN', JSON.stringify({ query: HIT_CHECK, [`x" in ${bsn}`]: 1 }), 'GRAPHQL_PARSE_FAILED', 400],
      ['variables that are not an object', JSON.stringify({ query: HIT_CHECK, variables: bsn }), 'GRAPHQL_PARSE_FAILED', 400],
      ['a document that does not parse', JSON.stringify({ query: `{ hitCheck(subject: { bsn: "${bsn}" ) { anyHit } }` }), 'GRAPHQL_PARSE_FAILED', 400],
      ['a document that quotes a BSN in a bad escape', JSON.stringify({ query: `{ hitCheck(subject: { bsn: "\\u{${bsn}}" }) { anyHit } }` }), 'GRAPHQL_PARSE_FAILED', 400],
      ['a mutation', JSON.stringify({ query: `mutation { hitCheck(subject: { bsn: "${bsn}" }) { anyHit } }` }), 'GRAPHQL_VALIDATION_FAILED', 400],
      ['a subscription', JSON.stringify({ query: `subscription { hitCheck(subject: { bsn: "${bsn}" }) { anyHit } }` }), 'GRAPHQL_VALIDATION_FAILED', 400],
      ['an operation name the document does not hold', JSON.stringify({ query: `{ hitCheck(subject: { bsn: "${bsn}" }) { anyHit } }`, operationName: 'HitCheck' }), 'GRAPHQL_PARSE_FAILED', 400],
      ['two operations and no operation name', JSON.stringify({ query: `query A { hitCheck(subject: { bsn: "${bsn}" }) { anyHit } } query B { __typename }` }), 'GRAPHQL_PARSE_FAILED', 400],
      ['an operation name that is not a string', JSON.stringify({ query: HIT_CHECK, operationName: 5, variables: { bsn } }), 'GRAPHQL_PARSE_FAILED', 400],
      ['a document with a misspelt field (no suggestion)', JSON.stringify({ query: `{ hitCheck(subject: { bsn: "${bsn}" }) { anyHits } }` }), 'GRAPHQL_VALIDATION_FAILED', 400],
      [
        'a variable with a field named by a BSN',
        JSON.stringify({ query: 'query Hit($s: SubjectInput!) { hitCheck(subject: $s) { anyHit } }', variables: { s: { bsn, [bsn]: 1 } } }),
        'BAD_USER_INPUT',
        400,
      ],
      ['a variable of the wrong type', JSON.stringify({ query: HIT_CHECK, variables: { bsn: Number(bsn) } }), 'BAD_USER_INPUT', 400],
      ['a BSN that fails the 11-check', JSON.stringify({ query: HIT_CHECK, variables: { bsn: '999998620' } }), 'BAD_USER_INPUT', 400],
      ['a default BSN that fails the 11-check', JSON.stringify({ query: 'query Hit($bsn: String! = "999998620") { hitCheck(subject: { bsn: $bsn }) { anyHit } }' }), 'BAD_USER_INPUT', 400],
      [
        'a query deeper than the limit',
        JSON.stringify({ query: '{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } }' }),
        'QUERY_TOO_COMPLEX',
        400,
      ],
      ['a document of more tokens than the limit', JSON.stringify({ query: `{ ${'__typename '.repeat(1_001)}}` }), 'QUERY_TOO_COMPLEX', 400],
      ['too many aliases', JSON.stringify({ query: `{ ${Array.from({ length: 9 }, (_, i) => `a${i}: __typename`).join(' ')} }` }), 'QUERY_TOO_COMPLEX', 400],
    ];

    it.each(cases)('refuses %s with its code and status, quoting nothing', async (_name, body, code, status) => {
      const token = await federation.issuer.token();
      for (const accept of ACCEPTS) expectRefused(await post(federation.gatewayUrl, token, body, { accept }), code, status);
    });

    it('refuses a caller whose purpose is not allowed with FORBIDDEN whatever its body is (DESIGN §6: before anything runs)', async () => {
      const noCaseRef = await federation.issuer.token({ case_ref: undefined });
      const good = JSON.stringify({ query: HIT_CHECK, variables: { bsn } });
      for (const [body, options] of [
        [good, {}],
        [good, { contentType: 'text/plain' }],
        [good, { contentType: null }],
        ['{"query": ', {}],
        ['[1, 2]', {}],
        [oversized(bsn), {}],
        [oversized(bsn), { chunked: true }],
      ] as [string, PostOptions][]) {
        expectRefused(await post(federation.gatewayUrl, noCaseRef, body, options), 'FORBIDDEN', 403);
      }
    });

    it('refuses a body that is not sent as JSON, whatever it holds', async () => {
      const token = await federation.issuer.token();
      const body = JSON.stringify({ query: HIT_CHECK, variables: { bsn } });
      for (const contentType of [null, 'text/plain', 'application/x-www-form-urlencoded', 'application/graphql', 'multipart/form-data; boundary=x']) {
        expectRefused(await post(federation.gatewayUrl, token, body, { contentType }), 'GRAPHQL_PARSE_FAILED', 400);
      }
      // JSON as yoga does not spell it: refused with a code, and on record, not an empty 415 past the audit.
      const sub = `spelt-${randomUUID()}`;
      const spelt = await federation.issuer.token({ sub });
      const nodeToken = await nodeTokenMinter(federation.dataDir)('politie', { purpose: 'police-ban-enforcement' });
      for (const contentType of ['Application/JSON', 'application/json ; charset=utf-8']) {
        expectRefused(await post(federation.gatewayUrl, spelt, body, { contentType }), 'GRAPHQL_PARSE_FAILED', 400);
        expectRefused(await post(federation.nodes.politie.url, nodeToken, body, { contentType }), 'GRAPHQL_PARSE_FAILED', 400);
      }
      expect(accessRecordsOf(join(federation.dataDir, 'gateway', 'audit.db'), sub).map((record) => record.decision)).toEqual(Array(2).fill('DENY:GRAPHQL_PARSE_FAILED'));
      const answer = await post(federation.gatewayUrl, token, body, { contentType: 'application/json; charset=utf-8' });
      expect(answer.body.data).toEqual({ hitCheck: { complete: true, anyHit: true } });
    });

    it('answers a lookup and refuses a bad token the same way whatever the Accept header', async () => {
      const token = await federation.issuer.token();
      const body = JSON.stringify({ query: HIT_CHECK, variables: { bsn } });
      for (const accept of ACCEPTS) {
        const answer = await post(federation.gatewayUrl, token, body, { accept });
        expect(answer.status).toBe(200);
        expect(answer.body.data).toEqual({ hitCheck: { complete: true, anyHit: true } });
        const refused = await post(federation.gatewayUrl, 'not-a-token', body, { accept });
        expectRefused(refused, 'UNAUTHENTICATED', 401);
        expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
      }
    });

    it('refuses a body larger than the limit, whether its length is declared or it comes in chunks', async () => {
      const token = await federation.issuer.token();
      expectRefused(await post(federation.gatewayUrl, token, oversized(bsn)), 'GRAPHQL_PARSE_FAILED', 400);
      expectRefused(await post(federation.gatewayUrl, token, oversized(bsn), { chunked: true }), 'GRAPHQL_PARSE_FAILED', 400);
    });

    it('answers a chunked body within the limit as any other', async () => {
      const token = await federation.issuer.token();
      const answer = await post(federation.gatewayUrl, token, JSON.stringify({ query: HIT_CHECK, variables: { bsn } }), { chunked: true });
      expect(answer.status).toBe(200);
      expect(answer.body.data).toEqual({ hitCheck: { complete: true, anyHit: true } });
    });

    it('answers a method other than POST with 405 METHOD_NOT_ALLOWED and Allow: POST', async () => {
      const token = await federation.issuer.token();
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const answer = await post(federation.gatewayUrl, token, JSON.stringify({ query: HIT_CHECK, variables: { bsn } }), { method });
        expectRefused(answer, 'METHOD_NOT_ALLOWED', 405);
        expect(answer.headers.get('allow')).toBe('POST');
      }
    });

    it('gives a page of another origin no CORS grant: no Access-Control headers, no preflight', async () => {
      const token = await federation.issuer.token();
      const origin = 'https://elsewhere.example';
      const response = await fetch(`${federation.gatewayUrl}/graphql`, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: HIT_CHECK, variables: { bsn } }),
      });
      await response.text();
      expect(response.status).toBe(200);
      const preflight = await fetch(`${federation.gatewayUrl}/graphql`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      });
      await preflight.text();
      expect(preflight.status).toBe(405);
      for (const answer of [response, preflight]) {
        expect([...answer.headers.keys()].filter((name) => name.startsWith('access-control-'))).toEqual([]);
      }
    });

    it('audits every refused request as denied, and answers none of them unaudited', async () => {
      const sub = `refused-${randomUUID()}`;
      const token = await federation.issuer.token({ sub });
      const named = (name: string) => cases.find(([what]) => what === name)!;
      const refused = [cases[0]!, cases[3]!, cases[6]!, named('a BSN that fails the 11-check'), named('a mutation'), named('too many aliases')];
      for (const [, body, code, status] of refused) expectRefused(await post(federation.gatewayUrl, token, body), code, status);
      const records = accessRecordsOf(join(federation.dataDir, 'gateway', 'audit.db'), sub);
      expect(records.map((record) => record.decision)).toEqual(refused.map(([, , code]) => `DENY:${code}`));
      // The rule that decided is the check that refused the input, not the purpose that allowed the caller.
      expect(records.map((record) => record.rule)).toEqual([
        'request and document parsing',
        'request and document parsing',
        'request and document parsing',
        'input validation',
        'public schema validation',
        'query limits',
      ]);
      expect(records.every((record) => record.outcome === 'DENIED')).toBe(true);
    });
  });

  describe("the access record's document hash (DESIGN §7: no BSN enters a record)", () => {
    it('is the same whichever BSN a caller writes into an alias, an operation name or an unknown field', async () => {
      const sub = `hash-${randomUUID()}`;
      const token = await federation.issuer.token({ sub });
      const documents = (digits: string) => [
        `query Check_${digits}($bsn: String!) { s_${digits}: hitCheck(subject: { bsn: $bsn }) { anyHit } }`,
        `{ hitCheck(subject: { bsn: "${digits}" }) { anyHit x${digits} } }`,
      ];
      for (const digits of [PERSONS.subject, PERSONS.victim]) {
        for (const query of documents(digits)) await post(federation.gatewayUrl, token, JSON.stringify({ query, variables: { bsn: digits } }));
      }
      const hashes = accessRecordsOf(join(federation.dataDir, 'gateway', 'audit.db'), sub).map((record) => record.operation.documentHash);
      expect(hashes).toHaveLength(4);
      // Each document's hash does not depend on the BSN it names; the two documents still differ.
      expect(hashes[2]).toBe(hashes[0]);
      expect(hashes[3]).toBe(hashes[1]);
      expect(hashes[0]).not.toBe(hashes[1]);
    });
  });

  describe('at a node', () => {
    it('refuses a body that is not JSON with GRAPHQL_PARSE_FAILED, quoting nothing', async () => {
      const token = await nodeTokenMinter(federation.dataDir)('politie', { purpose: 'police-ban-enforcement' });
      const answer = await post(federation.nodes.politie.url, token, `{"query": "{ records(bsns: [\\"${PERSONS.subject}\\"]`);
      expectRefused(answer, 'GRAPHQL_PARSE_FAILED', 400);
    });

    it('refuses a body that is a JSON array of BSNs the same way', async () => {
      const token = await nodeTokenMinter(federation.dataDir)('politie', { purpose: 'police-ban-enforcement' });
      expectRefused(await post(federation.nodes.politie.url, token, `["${PERSONS.subject}"]`), 'GRAPHQL_PARSE_FAILED', 400);
    });

    it('refuses a body not sent as JSON, and a mutation, whatever the Accept header', async () => {
      const token = await nodeTokenMinter(federation.dataDir)('politie', { purpose: 'police-ban-enforcement' });
      const mutation = JSON.stringify({ query: `mutation { records(bsns: ["${PERSONS.subject}"]) { __typename } }` });
      for (const accept of ACCEPTS) {
        expectRefused(await post(federation.nodes.politie.url, token, mutation, { accept, contentType: 'text/plain' }), 'GRAPHQL_PARSE_FAILED', 400);
        expectRefused(await post(federation.nodes.politie.url, token, mutation, { accept }), 'GRAPHQL_VALIDATION_FAILED', 400);
      }
    });

    it('refuses a BSN sent as a subject reference, and writes it nowhere', async () => {
      const sub = `refs-${randomUUID()}`;
      const token = await nodeTokenMinter(federation.dataDir)('politie', { purpose: 'police-ban-enforcement', sub });
      const query = 'query R($bsns: [String!]!, $refs: [String!]!, $at: DateTime!) { records(bsns: $bsns, subjectRefs: $refs, at: $at) { __typename } }';
      const answer = await post(federation.nodes.politie.url, token, JSON.stringify({ query, variables: { bsns: [PERSONS.subject], refs: [PERSONS.subject], at: new Date().toISOString() } }));
      expect(answer.body.errors!.map((error) => error.extensions?.['code'])).toEqual(['BAD_USER_INPUT']);
      expect(answer.body.data?.['records'] ?? null).toBeNull();
      expect(accessRecordsOf(join(federation.dataDir, 'nodes', 'politie', 'audit.db'), sub)).toHaveLength(1);
      const log = join(federation.dataDir, 'nodes', 'politie', 'audit.db');
      for (const file of [log, `${log}-wal`]) if (existsSync(file)) expect(readFileSync(file).includes(PERSONS.subject), file).toBe(false);
    });

    it('answers a method other than POST with 405 METHOD_NOT_ALLOWED and Allow: POST', async () => {
      const token = await nodeTokenMinter(federation.dataDir)('politie', { purpose: 'police-ban-enforcement' });
      const answer = await post(federation.nodes.politie.url, token, '{}', { method: 'PUT' });
      expectRefused(answer, 'METHOD_NOT_ALLOWED', 405);
      expect(answer.headers.get('allow')).toBe('POST');
    });

    it('refuses a body larger than the limit, declared or chunked', async () => {
      const token = await nodeTokenMinter(federation.dataDir)('politie', { purpose: 'police-ban-enforcement' });
      for (const chunked of [false, true]) {
        expectRefused(await post(federation.nodes.politie.url, token, oversized(PERSONS.subject), { chunked }), 'GRAPHQL_PARSE_FAILED', 400);
      }
    });
  });
});

describe('messages made safe (DESIGN §8: never a BSN or a location in an error)', () => {
  it.each([
    ['BSN written with spaces', 'Expected 1234 567 82 to be a string.'],
    ['BSN written with dots', 'Expected 1234.567.82 to be a string.'],
    ['coordinate', 'Expected 51.9225 to be an Int.'],
  ])('keeps no %s that a message quotes in a form the patterns before it do not expect', (_name, message) => {
    expect(safeMessage(message)).toMatch(/^Expected … to be an? \w+\.$/);
  });

  it('keeps an example date-time of our own', () => {
    expect(safeMessage('DateTime must be an RFC 3339 date-time with offset, e.g. 2026-06-01T00:00:00Z')).toContain('2026-06-01T00:00:00Z');
  });
});

