import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayKeys } from '../gateway/auth/gateway-keys.ts';
import type { NodeId } from '../lib/partners.ts';
import { AREA, AT, PERSONS } from './support/fixtures.ts';
import { type Federation, startFederation } from './support/federation.ts';
import { callNode, nodeAccessRecords, nodeAuditFile, nodeProcessingOf, nodeTokenMinter } from './support/node-calls.ts';

// DESIGN §5b and §6 step 3: every node checks the gateway's token itself and applies its own
// release file (policies/release/<node>.yaml) to the token's purpose. A field the node does not
// release is never resolved or sent, even when asked directly with a validly signed token, and the
// node answers PURPOSE_FORBIDS_FIELD. These tests bypass the gateway and talk to each node as the
// gateway would, with tokens signed by the gateway's own key (which the nodes trust).

const RECORDS = `query NAME($bsns: [String!]!, $refs: [String!]!, $at: DateTime!, $location: GeoPointInput, $counterpart: String, $counterpartRef: String) {
  records(bsns: $bsns, subjectRefs: $refs, at: $at, location: $location, counterpartBsn: $counterpart, counterpartRef: $counterpartRef) { SELECTION } }`;
/**
 * A records document. Each gets its own operation name, so that every test's decision is made for
 * that request alone; the test "a refusal is never replayed" reuses one document on purpose.
 */
let documents = 0;
const recordsOf = (selection: string, name = `Records${++documents}`) => RECORDS.replace('NAME', name).replace('SELECTION', selection);
/** The subject (known to every node) and a person nobody knows, in that order. */
const VARIABLES = {
  bsns: [PERSONS.subject, PERSONS.unknown],
  refs: ['ref-subject-0000000000', 'ref-unknown-0000000000'],
  at: AT.may2026,
  location: AREA.inside,
  counterpart: PERSONS.victim,
  counterpartRef: 'ref-victim-00000000000',
};
const PROCESSING_RECORDS = `{ processingRecords(traceIds: ["${'0'.repeat(32)}"]) { traceId name } }`;
const isProcessingRecords = (query: string) => query.includes('processingRecords');

/** Text that belongs to the fixtures' records, per kind of field: none may leave a node that withholds it. */
const SECRETS = {
  vtContact: ['Veilig Thuis Rotterdam Rijnmond', 'Team Triage', '0800 2000'],
  areaCenter: [String(AREA.center.lat), String(AREA.center.lon)],
  areaRadius: [`"radiusMeters"`, String(AREA.radiusMeters)],
  bans: ['PN-10-000001-25/1', 'art. 38v Sr', PERSONS.victim],
};

describe('release policies at the nodes, asked directly (DESIGN §6 step 3)', () => {
  let federation: Federation;
  let mint: ReturnType<typeof nodeTokenMinter>;

  beforeAll(async () => {
    federation = await startFederation();
    mint = nodeTokenMinter(federation.dataDir);
  }, 120_000);
  afterAll(() => federation?.stop());

  const ask = async (node: NodeId, purpose: string, query: string, options: { sub?: string; aud?: string } = {}) => {
    const token = await mint(options.aud ?? node, { purpose, ...(options.sub ? { sub: options.sub } : {}) });
    return callNode(federation.nodes[node].url, token, query, isProcessingRecords(query) ? undefined : VARIABLES);
  };

  describe('a field outside the node’s release for the purpose is PURPOSE_FORBIDS_FIELD and never sent', () => {
    const cases: [NodeId, string, string, string, string[]][] = [
      // Veilig Thuis releases existence only to the police, never whom to call.
      ['veilig-thuis', 'police-ban-enforcement', 'contact { organisation unit phone }', 'NodeRecord.contact', SECRETS.vtContact],
      ['veilig-thuis', 'police-ban-enforcement', 'bans { id }', 'NodeRecord.bans', SECRETS.bans],
      // Probation supervision gets nothing at all from Veilig Thuis, not even whether it knows the person.
      ['veilig-thuis', 'reclassering-supervision', '__typename', 'Query.records', ['NodeRecord']],
      ['veilig-thuis', 'reclassering-supervision', 'contact { organisation unit phone }', 'Query.records', SECRETS.vtContact],
      ['veilig-thuis', 'reclassering-supervision', 'bans { id }', 'Query.records', SECRETS.bans],
      // The area's centre and radius (often the victim's home) stay away from the police.
      ['politie', 'police-ban-enforcement', 'bans { id area { description center { lat lon } } }', 'BanArea.center', SECRETS.areaCenter],
      ['politie', 'police-ban-enforcement', 'bans { id area { radiusMeters } }', 'BanArea.radiusMeters', SECRETS.areaRadius],
      ['om', 'police-ban-enforcement', 'bans { area { center { lat lon } radiusMeters } }', 'BanArea.center', [...SECRETS.areaCenter, ...SECRETS.areaRadius]],
      // A hit check is no way to read bans.
      ['politie', 'vt-hit-check', 'bans { id protectedBsns }', 'NodeRecord.bans', SECRETS.bans],
      ['reclassering', 'vt-hit-check', 'contact { organisation } bans { id }', 'NodeRecord.bans', [...SECRETS.bans, 'Reclassering Nederland']],
      // A privacy officer reads processing records, not persons.
      ['politie', 'privacy-audit', 'contact { organisation }', 'Query.records', ['Politie Eenheid Rotterdam']],
    ];

    it.each(cases)('%s under %s asked for `%s` → PURPOSE_FORBIDS_FIELD %s', async (node, purpose, selection, field, secrets) => {
      const sub = `release-${randomUUID()}`;
      const { status, text, body } = await ask(node, purpose, recordsOf(selection), { sub });
      expect(status).toBe(403);
      expect(body.data ?? null).toBeNull();
      expect(body.errors).toHaveLength(1);
      expect(body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field, purpose });
      for (const secret of secrets) expect(text).not.toContain(secret);
      // The node kept its own record of the refusal, releasing nothing, and of each person it was
      // asked about: refused, with nothing looked up, so not whether it knows them.
      const records = nodeAccessRecords(federation.dataDir, node).filter((record) => record.sub === sub);
      expect(records).toEqual([expect.objectContaining({ purpose, decision: 'DENY:PURPOSE_FORBIDS_FIELD', fieldsReleased: [] })]);
      const processing = nodeProcessingOf(federation.dataDir, node, sub);
      expect(processing.map((record) => [record.attributes['dpl.core.data_subject_id'], record.status_code, record.attributes['soh.outcome'], record.attributes['soh.fields_released']])).toEqual(
        [...VARIABLES.refs, VARIABLES.counterpartRef].map((ref) => [ref, 'UNSET', 'DENIED', []]),
      );
    });

    it('processingRecords are released to privacy officers only', async () => {
      const { status, body } = await ask('politie', 'police-ban-enforcement', `query Police ${PROCESSING_RECORDS}`);
      expect(status).toBe(403);
      expect(body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'Query.processingRecords' });
    });

    it('a purpose no release file lists gets nothing (default deny)', async () => {
      const { status, text, body } = await ask('politie', 'marketing-analysis', recordsOf('contact { organisation } bans { id }'));
      expect(status).toBe(403);
      expect(body.data ?? null).toBeNull();
      expect(body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'Query.records', purpose: 'marketing-analysis' });
      for (const secret of [...SECRETS.bans, 'Politie Eenheid Rotterdam']) expect(text).not.toContain(secret);
    });
  });

  describe('a decision belongs to its own request', () => {
    // The same document under two purposes: the refusal for the first must not be replayed to the
    // second, for which the node does release the field.
    it('a refusal is never replayed to a later request with another purpose', async () => {
      const document = recordsOf('contact { organisation unit phone }', 'SameDocumentTwice');
      const refused = await ask('veilig-thuis', 'police-ban-enforcement', document);
      expect(refused.status).toBe(403);
      expect(refused.body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'NodeRecord.contact', purpose: 'police-ban-enforcement' });

      const released = await ask('veilig-thuis', 'vt-hit-check', document);
      expect(released.body.errors).toBeUndefined();
      expect(released.status).toBe(200);
      expect(released.body.data!.records[0].contact.organisation).toBe('Veilig Thuis Rotterdam Rijnmond');

      const refusedAgain = await ask('veilig-thuis', 'reclassering-supervision', document);
      expect(refusedAgain.status).toBe(403);
      expect(refusedAgain.body.errors![0]!.extensions).toMatchObject({ field: 'Query.records', purpose: 'reclassering-supervision' });
    });
  });

  describe('a field inside the node’s release is resolved and sent', () => {
    it('Veilig Thuis gives a fellow Veilig Thuis worker whom to call', async () => {
      const { status, body } = await ask('veilig-thuis', 'vt-hit-check', recordsOf('contact { organisation unit phone }'));
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      expect(body.data!.records).toEqual([{ contact: { organisation: 'Veilig Thuis Rotterdam Rijnmond', unit: 'Team Triage', phone: '0800 2000' } }, null]);
    });

    it('Veilig Thuis tells the police only whether it knows the person', async () => {
      const sub = `release-${randomUUID()}`;
      const { status, text, body } = await ask('veilig-thuis', 'police-ban-enforcement', recordsOf('__typename'), { sub });
      expect(status).toBe(200);
      expect(body.data!.records).toEqual([{ __typename: 'NodeRecord' }, null]);
      for (const secret of SECRETS.vtContact) expect(text).not.toContain(secret);
      const [record] = nodeAccessRecords(federation.dataDir, 'veilig-thuis').filter((r) => r.sub === sub);
      expect(record).toMatchObject({ decision: 'ALLOW', fieldsReleased: ['Query.records'] });
    });

    it('lists in its access record no field released when it knows none of the persons asked about, or is asked about no one', async () => {
      const sub = `release-${randomUUID()}`;
      const token = await mint('veilig-thuis', { purpose: 'vt-hit-check', sub });
      for (const [bsns, refs] of [[[PERSONS.unknown], ['ref-unknown-0000000000']], [[], []]] as [string[], string[]][]) {
        const { status, body } = await callNode(federation.nodes['veilig-thuis'].url, token, recordsOf('contact { organisation phone }'), {
          ...VARIABLES,
          bsns,
          refs,
          location: null,
          counterpart: null,
          counterpartRef: null,
        });
        expect(status).toBe(200);
        expect(body.data!.records).toEqual(bsns.map(() => null));
      }
      const records = nodeAccessRecords(federation.dataDir, 'veilig-thuis').filter((r) => r.sub === sub);
      expect(records).toEqual([
        expect.objectContaining({ decision: 'ALLOW', fieldsReleased: [], subjects: 1 }),
        expect.objectContaining({ decision: 'ALLOW', fieldsReleased: [], subjects: 0 }),
      ]);
    });

    it('politie gives the police the ban terms and violatedAt, computed at the node', async () => {
      const { status, text, body } = await ask(
        'politie',
        'police-ban-enforcement',
        recordsOf('bans { id kind legalBasis area { description municipality } violatedAt protectedBsns notify { organisation } }'),
      );
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      const bans = body.data!.records[0].bans as Record<string, any>[];
      const b2 = bans.find((ban) => ban.id === 'PN-10-000002-25/1')!;
      expect(b2).toMatchObject({ kind: 'LOCATION', area: { description: '5 km rond woning slachtoffer', municipality: 'Rotterdam' }, violatedAt: true });
      // The gateway receives protected persons' BSNs and turns them into references itself.
      expect(b2.protectedBsns).toEqual([PERSONS.victim]);
      expect(body.data!.records[1]).toBeNull();
      for (const secret of SECRETS.areaCenter) expect(text).not.toContain(secret);
    });

    it('om gives of a ban not in force at `at` only what shows that: not whom it protects, its terms, contact or area', async () => {
      const { status, body } = await ask('om', 'reclassering-supervision', recordsOf('bans { id status protectedBsns conditions notify { organisation } area { description center { lat lon } } violatedAt }'));
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      const bans = Object.fromEntries((body.data!.records[0].bans as Record<string, any>[]).map((ban) => [ban.id, ban]));
      // In force on 5 May 2026: all of it.
      expect(bans['PN-10-000001-25/1']!.protectedBsns).toEqual([PERSONS.victim]);
      expect(bans['PN-10-000002-25/1']!.area).toMatchObject({ description: '5 km rond woning slachtoffer', center: AREA.center });
      // Ended, not yet begun, revoked before, suspended before: the ban and its dates, nothing more.
      for (const id of ['PN-10-000003-23/1', 'PN-10-000004-29/1', 'PN-10-000005-25/1', 'PN-10-000007-24/1']) {
        expect(bans[id], id).toMatchObject({ protectedBsns: [], conditions: null, notify: null, area: null, violatedAt: null });
      }
      expect(JSON.stringify(body)).not.toContain(PERSONS.unrelated);
    });

    it.each<[NodeId]>([['politie'], ['om']])('%s gives probation supervision the area centre and radius', async (node) => {
      const { status, body } = await ask(node, 'reclassering-supervision', recordsOf('bans { id area { center { lat lon } radiusMeters } }'));
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      const b2 = (body.data!.records[0].bans as Record<string, any>[]).find((ban) => ban.id === 'PN-10-000002-25/1')!;
      expect(b2.area).toEqual({ center: AREA.center, radiusMeters: AREA.radiusMeters });
    });

    it('probation tells the police whether a ban protects the counterpart, matched at the node', async () => {
      const { status, body } = await ask('reclassering', 'police-ban-enforcement', recordsOf('bans { id protectsCounterpart }'));
      expect(status).toBe(200);
      expect(body.data!.records[0].bans).toEqual([{ id: 'PN-10-000001-25/1', protectsCounterpart: true }]);
    });

    it('a counterpart comes with its subject reference, or the node refuses to process them', async () => {
      const token = await mint('reclassering', { purpose: 'police-ban-enforcement' });
      for (const variables of [{ ...VARIABLES, counterpartRef: null }, { ...VARIABLES, counterpart: null }]) {
        const { body } = await callNode(federation.nodes.reclassering.url, token, recordsOf('bans { id protectsCounterpart }'), variables);
        expect(body.data?.records ?? null).toBeNull();
        expect(body.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) })]);
        expect(JSON.stringify(body)).not.toContain(PERSONS.victim);
      }
    });

    it('a call refused for its input still records whom it asked about, and nothing else', async () => {
      const sub = `input-${randomUUID()}`;
      const token = await mint('politie', { purpose: 'police-ban-enforcement', sub });
      // As the gateway calls: the span of its call to the node named in traceparent.
      const gatewaySpan = 'b7ad6b7169203331';
      const traceparent = `00-0af7651916cd43dd8448eb211c80319c-${gatewaySpan}-01`;
      const { status, body } = await callNode(federation.nodes.politie.url, token, recordsOf('bans { id violatedAt }'), { ...VARIABLES, location: { lat: 91, lon: 4 } }, { traceparent });
      expect(status).toBe(400);
      expect(body.errors![0]!.extensions!['code']).toBe('BAD_USER_INPUT');
      const processing = nodeProcessingOf(federation.dataDir, 'politie', sub) as unknown as { span_id: string; parent_span_id: string | null; attributes: Record<string, unknown> }[];
      expect(processing.map((record) => record.attributes['soh.outcome'])).toEqual(['DENIED', 'DENIED', 'DENIED']);
      // Each record's span is the node's own, a child of the gateway's call: never its own parent.
      for (const record of processing) expect(record).toMatchObject({ span_id: expect.not.stringMatching(gatewaySpan), parent_span_id: gatewaySpan });
      expect(nodeAccessRecords(federation.dataDir, 'politie').filter((record) => record.sub === sub)).toEqual([expect.objectContaining({ decision: 'DENY:BAD_USER_INPUT', subjects: 3 })]);
    });

    it('answers one question per call: aliases cannot multiply the batch', async () => {
      const sub = `aliases-${randomUUID()}`;
      const token = await mint('politie', { purpose: 'police-ban-enforcement', sub });
      const twice = `query Twice($bsns: [String!]!, $refs: [String!]!, $at: DateTime!) {
        a: records(bsns: $bsns, subjectRefs: $refs, at: $at) { __typename } b: records(bsns: $bsns, subjectRefs: $refs, at: $at) { __typename } }`;
      const { status, body } = await callNode(federation.nodes.politie.url, token, twice, { bsns: VARIABLES.bsns, refs: VARIABLES.refs, at: AT.may2026 });
      expect(status).toBe(400);
      expect(body.errors!.map((error) => error.extensions!['code'])).toEqual(['QUERY_TOO_COMPLEX']);
      expect(nodeProcessingOf(federation.dataDir, 'politie', sub)).toEqual([]);
    });

    it('looks at the bans for a counterpart asked about, whatever fields the call selects', async () => {
      const sub = `counterpart-${randomUUID()}`;
      const token = await mint('reclassering', { purpose: 'police-ban-enforcement', sub });
      const { status } = await callNode(federation.nodes.reclassering.url, token, recordsOf('__typename'), VARIABLES);
      expect(status).toBe(200);
      const aboutVictim = nodeProcessingOf(federation.dataDir, 'reclassering', sub).filter((record) => record.attributes['dpl.core.data_subject_id'] === VARIABLES.counterpartRef);
      // B1, held by probation, protects the victim.
      expect(aboutVictim.map((record) => record.attributes['soh.outcome'])).toEqual(['HIT']);
    });

    it('the OM gives a Veilig Thuis worker its contact route', async () => {
      const { status, body } = await ask('om', 'vt-hit-check', recordsOf('contact { organisation }'));
      expect(status).toBe(200);
      expect(body.data!.records[0].contact.organisation).toBe('Openbaar Ministerie');
    });

    it('a privacy officer reads processing records', async () => {
      const { status, body } = await ask('politie', 'privacy-audit', `query Officer ${PROCESSING_RECORDS}`);
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      expect(body.data!.processingRecords).toEqual([]);
    });
  });

  describe('a node accepts only a valid token minted for it (DESIGN §4)', () => {
    // Keys of a gateway the nodes do not trust.
    let otherKeysDir: string;
    beforeAll(() => {
      otherKeysDir = mkdtempSync(join(tmpdir(), 'soh-other-gateway-'));
    });
    afterAll(() => {
      if (otherKeysDir) rmSync(otherKeysDir, { recursive: true, force: true });
    });

    /** A token signed with the real gateway key, with claims the test chooses. */
    const craft = async (claims: Record<string, unknown>, lifetimeSeconds = 60, keysDir?: string) => {
      const key = new GatewayKeys(keysDir ?? federation.dataDir).signing;
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        iss: 'soh-gateway',
        aud: 'politie',
        sub: 'worker-1',
        org: 'politie',
        roles: ['politie-medewerker'],
        purpose: 'police-ban-enforcement',
        case_ref: 'PL-2026-0001',
        act: { sub: 'soh-gateway' },
        jti: randomUUID(),
        iat: now,
        exp: now + lifetimeSeconds,
        ...claims,
      };
      for (const name of Object.keys(payload)) if (payload[name] === undefined) delete payload[name];
      return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid }).sign(key.privateKey);
    };

    const refused: [string, () => Promise<string | null>][] = [
      ['no token at all', async () => null],
      ["a token minted for another node's audience (om)", () => mint('om', { purpose: 'police-ban-enforcement' })],
      ["a token minted for another node's audience (veilig-thuis)", () => mint('veilig-thuis', { purpose: 'police-ban-enforcement' })],
      ['a token for the gateway audience', () => craft({ aud: 'soh-gateway' })],
      ['a caller token from an identity provider, not the gateway', () => federation.issuer.token()],
      ["a token signed with another gateway's key", () => craft({}, 60, otherKeysDir)],
      ['a token from another issuer, signed with the gateway key', () => craft({ iss: 'https://idp.test.example' })],
      ['a token living longer than 60 s', () => craft({}, 600)],
      ['an expired token', () => craft({ iat: Math.floor(Date.now() / 1000) - 300, exp: Math.floor(Date.now() / 1000) - 240 })],
      ['a token without act', () => craft({ act: undefined })],
      ['a token without purpose', () => craft({ purpose: undefined })],
    ];

    it('the crafted token itself is accepted, so each refusal below is about the one thing it changes', async () => {
      const { status, body } = await callNode(federation.nodes.politie.url, await craft({}), recordsOf('bans { id }'), VARIABLES);
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
    });

    it.each(refused)('refuses %s with 401 UNAUTHENTICATED and sends nothing', async (_what, make) => {
      const { status, text, body } = await callNode(federation.nodes.politie.url, await make(), recordsOf('contact { organisation } bans { id }'), VARIABLES);
      expect(status).toBe(401);
      expect(body.errors![0]!.extensions?.['code']).toBe('UNAUTHENTICATED');
      expect(body.data ?? null).toBeNull();
      for (const secret of [...SECRETS.bans, 'Politie Eenheid Rotterdam']) expect(text).not.toContain(secret);
    });

    it("continues the trace a call names only when the gateway's token verifies: a stranger cannot file records under a real trace", async () => {
      const traceIdsOf = (traceId: string) => {
        const db = new Database(nodeAuditFile(federation.dataDir, 'politie'), { readonly: true });
        try {
          return db.prepare("SELECT kind, json_extract(body, '$.decision') AS decision FROM records WHERE trace_id = ? ORDER BY seq").all(traceId);
        } finally {
          db.close();
        }
      };
      const named = () => randomUUID().replaceAll('-', '');
      const traceparent = (traceId: string) => ({ traceparent: `00-${traceId}-${'1'.repeat(16)}-01` });

      const strangersTrace = named();
      const refused = await callNode(federation.nodes.politie.url, null, recordsOf('bans { id }'), VARIABLES, traceparent(strangersTrace));
      expect(refused.status).toBe(401);
      expect(traceIdsOf(strangersTrace)).toEqual([]);

      const gatewaysTrace = named();
      const answered = await callNode(federation.nodes.politie.url, await craft({}), recordsOf('bans { id }'), VARIABLES, traceparent(gatewaysTrace));
      expect(answered.status).toBe(200);
      expect(traceIdsOf(gatewaysTrace)).toEqual(expect.arrayContaining([{ kind: 'access', decision: 'ALLOW' }]));
    });
  });
});
