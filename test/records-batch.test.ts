import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trace } from '@opentelemetry/api';
import { type FieldNode, type OperationDefinitionNode, buildSchema, execute, parse, validate } from 'graphql';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GatewayKeys } from '../gateway/auth/gateway-keys.ts';
import { DownstreamTokens } from '../gateway/auth/downstream-token.ts';
import { Deadline } from '../gateway/federation/deadline.ts';
import { type NodeCallContext, NodeClient } from '../gateway/federation/node-client.ts';
import { PersonFetcher } from '../gateway/federation/person-fetcher.ts';
import { buildStitchedPerson } from '../gateway/federation/stitched-person.ts';
import { systemClock } from '../lib/clock.ts';
import { schemaSource } from '../lib/schemas.ts';
import { subjectRefs } from '../lib/subject-ref.ts';
import { PERSONS } from './support/fixtures.ts';

/**
 * The stitched Person's batched delegation against a node that answers what each test tells it
 * to, so that a partner's malformed or partly failed answers can be played: every Person of one
 * round goes to the node in one `records` request, and each answer (or failure) reaches the
 * person it belongs to.
 */
interface Received {
  query: string;
  variables: { bsns: string[]; subjectRefs: string[]; at: string; location: unknown; counterpartBsn: unknown; counterpartRef: unknown };
}

const TWO_PERSONS = parse(`query Two($a: String!, $b: String!, $at: DateTime!) {
  a: person(bsn: $a) { politie(at: $at) { __typename contact { organisation } } }
  b: person(bsn: $b) { politie(at: $at) { __typename contact { organisation } } }
}`);
const TWO_PERSONS_WITH_COUNTERPART = parse(`query Two($a: String!, $b: String!, $at: DateTime!, $counterpart: String) {
  a: person(bsn: $a) { politie(at: $at, counterpartBsn: $counterpart) { __typename contact { organisation } } }
  b: person(bsn: $b) { politie(at: $at, counterpartBsn: $counterpart) { __typename contact { organisation } } }
}`);

/**
 * The node API exactly as DESIGN §5b writes it, which another organisation may build its node
 * from: our node.graphql with `records` as §5b has it (no counterpartRef).
 */
const NODE_API_OF_THE_DESIGN = buildSchema(
  schemaSource('node').replace(
    /records\(bsns: \[String!\]!, subjectRefs: \[String!\]!, at: DateTime!, location: GeoPointInput,\s+counterpartBsn: String, counterpartRef: String\)/,
    'records(bsns: [String!]!, subjectRefs: [String!]!, at: DateTime!, location: GeoPointInput, counterpartBsn: String)',
  ),
);
const AT = '2026-06-01T00:00:00Z';

describe('batched delegation to a node', () => {
  let dataDir: string;
  let server: Server;
  let client: NodeClient;
  let received: Received[];
  let answer: (variables: Received['variables']) => object;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'soh-batch-'));
    server = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        const parsed = JSON.parse(body) as Received;
        received.push(parsed);
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer(parsed.variables)));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address() as { port: number };
    client = new NodeClient('politie', `http://127.0.0.1:${address.port}`, {
      tokens: new DownstreamTokens(new GatewayKeys(dataDir), systemClock),
      tracer: trace.getTracer('test'),
      clock: systemClock,
    });
  });

  afterAll(async () => {
    await client.close();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    received = [];
  });

  /** One request's context for the node calls: a police caller and a deadline of 5 s. */
  function callContext(): NodeCallContext {
    return {
      caller: { iss: 'https://idp.test.example', sub: 'tester', org: 'politie', roles: ['politie-medewerker'], purpose: 'police-ban-enforcement', caseRef: 'PL-1', jti: 'j' },
      deadline: new Deadline(systemClock, 5_000),
      span: trace.getTracer('test').startSpan('test'),
      subjectRef: subjectRefs(Buffer.alloc(32, 7)),
      reached: new Set(),
    };
  }

  async function askTwo(a: string, b: string, counterpart?: string) {
    const schema = buildStitchedPerson(new Map([['POLITIE', client]]));
    const context = callContext();
    try {
      const document = counterpart ? TWO_PERSONS_WITH_COUNTERPART : TWO_PERSONS;
      return await execute({ schema, document, variableValues: { a, b, at: AT, counterpart }, contextValue: context });
    } finally {
      context.deadline.dispose();
    }
  }

  it('sends all persons of a round in one records request, in order, and gives each its own record', async () => {
    answer = ({ bsns }) => ({ data: { records: bsns.map((bsn) => (bsn === PERSONS.subject ? { __typename: 'NodeRecord', contact: { organisation: 'politie' } } : null)) } });
    const result = await askTwo(PERSONS.subject, PERSONS.unknown);

    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request!.variables.bsns).toEqual([PERSONS.subject, PERSONS.unknown]);
    expect(request!.variables.subjectRefs).toEqual([PERSONS.subject, PERSONS.unknown].map(subjectRefs(Buffer.alloc(32, 7))));
    expect(request!.variables.at).toBe(AT);
    const [operation] = parse(request!.query).definitions as [OperationDefinitionNode];
    const [root] = operation.selectionSet.selections as [FieldNode];
    expect(root.name.value).toBe('records');
    expect(root.arguments!.map((argument) => argument.name.value)).toEqual(['bsns', 'subjectRefs', 'at', 'location']);
    // A node built from DESIGN §5b alone takes the request as it is.
    expect(NODE_API_OF_THE_DESIGN.getQueryType()!.getFields()['records']!.args.map((argument) => argument.name)).not.toContain('counterpartRef');
    expect(validate(NODE_API_OF_THE_DESIGN, parse(request!.query))).toEqual([]);
    expect(Object.keys(request!.variables).sort()).toEqual(['at', 'bsns', 'location', 'subjectRefs']);
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({ a: { politie: { __typename: 'NodeRecord', contact: { organisation: 'politie' } } }, b: { politie: null } });
  });

  it("sends a counterpart with the gateway's reference of it, which the node needs for the counterpart's processing record", async () => {
    answer = ({ bsns }) => ({ data: { records: bsns.map(() => null) } });
    const result = await askTwo(PERSONS.subject, PERSONS.unknown, PERSONS.victim);

    expect(result.errors).toBeUndefined();
    expect(received).toHaveLength(1);
    const [request] = received;
    const [operation] = parse(request!.query).definitions as [OperationDefinitionNode];
    const [root] = operation.selectionSet.selections as [FieldNode];
    expect(root.arguments!.map((argument) => argument.name.value)).toEqual(['bsns', 'subjectRefs', 'at', 'location', 'counterpartBsn', 'counterpartRef']);
    expect(request!.variables.counterpartBsn).toBe(PERSONS.victim);
    expect(request!.variables.counterpartRef).toBe(subjectRefs(Buffer.alloc(32, 7))(PERSONS.victim));
    expect(validate(buildSchema(schemaSource('node')), parse(request!.query))).toEqual([]);
  });

  it('fails only the person a node error is located at', async () => {
    answer = () => ({
      data: { records: [{ __typename: 'NodeRecord', contact: { organisation: 'politie' } }, null] },
      errors: [{ message: 'lookup failed', path: ['records', 1], extensions: { code: 'INTERNAL' } }],
    });
    const result = await askTwo(PERSONS.subject, PERSONS.victim);

    expect(received).toHaveLength(1);
    expect(result.data).toEqual({ a: { politie: { __typename: 'NodeRecord', contact: { organisation: 'politie' } } }, b: { politie: null } });
    expect(result.errors).toHaveLength(1);
    expect(result.errors![0]!.path).toEqual(['b', 'politie']);
    expect(result.errors![0]!.originalError).toMatchObject({ name: 'NodeUnavailable', reason: 'INTERNAL' });
  });

  it('fails every person on an error located at no entry of the batch', async () => {
    answer = () => ({ data: { records: [null, null] }, errors: [{ message: 'lookup failed', path: ['records', 99], extensions: { code: 'INTERNAL' } }] });
    const result = await askTwo(PERSONS.subject, PERSONS.victim);

    expect(result.data).toEqual({ a: { politie: null }, b: { politie: null } });
    expect(result.errors?.map((error) => error.path)).toEqual([['a', 'politie'], ['b', 'politie']]);
    for (const error of result.errors!) expect(error.originalError).toMatchObject({ name: 'NodeUnavailable', reason: 'INTERNAL' });
  });

  it('fails every person on an error the node does not locate', async () => {
    answer = () => ({ data: null, errors: [{ message: 'token refused', extensions: { code: 'UNAUTHENTICATED' } }] });
    const result = await askTwo(PERSONS.subject, PERSONS.victim);

    expect(result.errors?.map((error) => error.path)).toEqual([['a', 'politie'], ['b', 'politie']]);
    for (const error of result.errors!) expect(error.originalError).toMatchObject({ name: 'NodeUnavailable', reason: 'UNAUTHENTICATED' });
  });

  it('fails every person when the answer does not hold one entry per BSN asked', async () => {
    answer = () => ({ data: { records: [{ __typename: 'NodeRecord', contact: { organisation: 'politie' } }] } });
    const result = await askTwo(PERSONS.subject, PERSONS.victim);

    expect(result.data).toEqual({ a: { politie: null }, b: { politie: null } });
    for (const error of result.errors!) expect(error.originalError).toMatchObject({ name: 'NodeUnavailable', reason: 'answer does not match the request' });
  });

  it.each([[false], [0], ['x'], [[]]])('fails the person whose entry is %j, neither a record nor null: never read as a hit', async (entry) => {
    answer = () => ({ data: { records: [entry, { __typename: 'NodeRecord', contact: { organisation: 'politie' } }] } });
    const result = await askTwo(PERSONS.subject, PERSONS.victim);

    expect(result.data).toEqual({ a: { politie: null }, b: { politie: { __typename: 'NodeRecord', contact: { organisation: 'politie' } } } });
    expect(result.errors?.map((error) => error.path)).toEqual([['a', 'politie']]);
    expect(result.errors![0]!.originalError).toMatchObject({ name: 'NodeUnavailable', reason: 'answer does not match the request' });
  });

  describe('a ban answer the gateway cannot read without guessing makes the partner UNAVAILABLE, never NO_HIT', () => {
    const ban = (fields: object) => ({
      __typename: 'NodeRecord',
      bans: [{ __typename: 'NodeBan', id: 'B-1', kind: 'CONTACT', status: 'ACTIVE', statusChangedAt: null, validFrom: '2025-01-01T00:00:00Z', validUntil: null, ...fields }],
    });
    async function fetchOne(record: object, counterpartBsn: string | null) {
      answer = () => ({ data: { records: [record] } });
      const context = callContext();
      try {
        const fetcher = new PersonFetcher(buildStitchedPerson(new Map([['POLITIE', client]])));
        const selection = 'bans { id kind status statusChangedAt validFrom validUntil protectsCounterpart }';
        const [politie] = await fetcher.fetch(PERSONS.subject, ['POLITIE'], selection, { at: AT, counterpartBsn }, context);
        return politie!;
      } finally {
        context.deadline.dispose();
      }
    }

    it.each([
      ['a status outside ACTIVE, REVOKED and SUSPENDED', ban({ status: 'active' }), null],
      ['no answer to whether a ban protects the counterpart asked about', ban({ protectsCounterpart: null }), PERSONS.victim],
    ])('%s', async (_name, record, counterpart) => {
      expect(await fetchOne(record, counterpart)).toEqual({ partner: 'POLITIE', answered: false, reason: 'unreadable answer' });
    });

    it('keeps at most 256 planned node queries, however many field combinations callers pick', async () => {
      const fetcher = new PersonFetcher(buildStitchedPerson(new Map([['POLITIE', client]])));
      answer = ({ bsns }) => ({ data: { records: bsns.map(() => null) } });
      for (let i = 0; i < 300; i++) {
        const context = callContext();
        try {
          const selection = `bans { id kind status statusChangedAt validFrom validUntil pick${i}: legalBasis }`;
          expect((await fetcher.fetch(PERSONS.subject, ['POLITIE'], selection, { at: AT }, context))[0]).toMatchObject({ answered: true });
        } finally {
          context.deadline.dispose();
        }
      }
      // Private, read here only to see the bound: each entry is a planned query of about 50 KiB.
      expect((fetcher as unknown as { documents: Map<string, unknown> }).documents.size).toBe(256);
    });

    it('and reads a well-formed one as it is', async () => {
      const answered = await fetchOne(ban({ status: 'REVOKED', statusChangedAt: '2026-01-01T00:00:00Z', protectsCounterpart: false }), PERSONS.victim);
      expect(answered).toMatchObject({ partner: 'POLITIE', answered: true, record: { bans: [{ id: 'B-1', status: 'REVOKED', protectsCounterpart: false }] } });
    });
  });
});
