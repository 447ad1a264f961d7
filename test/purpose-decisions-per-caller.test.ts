import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownstreamTokens } from '../gateway/auth/downstream-token.ts';
import { GatewayKeys } from '../gateway/auth/gateway-keys.ts';
import { systemClock } from '../lib/clock.ts';
import { type Federation, startFederation } from './support/federation.ts';
import { PERSONS } from './support/fixtures.ts';

/**
 * Purpose decisions belong to the request, not to the document: the same query text, sent by
 * callers under different purposes in either order, is allowed or refused for each on its own.
 */
describe('the same document under different purposes', () => {
  let federation: Federation;
  let police: string;
  let vt: string;

  beforeAll(async () => {
    federation = await startFederation();
    police = await federation.issuer.token();
    vt = await federation.issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1' });
  });
  afterAll(() => federation?.stop());

  const WITH_CONTACT = 'query Hit($bsn: String!) { hitCheck(subject: {bsn: $bsn}) { anyHit partners { partner status contact { phone } } } }';
  const BANS = 'query Bans($bsn: String!) { activeBans(subject: {bsn: $bsn}) { underActiveBan } }';

  it('refuses a caller first, then still answers another whose purpose allows the fields', async () => {
    const refused = await federation.query(police, WITH_CONTACT, { bsn: PERSONS.subject });
    expect(refused.status).toBe(403);
    expect(refused.body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'PartnerHit.contact', purpose: 'police-ban-enforcement' });

    const allowed = await federation.query(vt, WITH_CONTACT, { bsn: PERSONS.subject });
    expect(allowed.status).toBe(200);
    expect(allowed.body.errors).toBeUndefined();
    expect(allowed.body.data!.hitCheck.anyHit).toBe(true);

    const refusedAgain = await federation.query(police, WITH_CONTACT, { bsn: PERSONS.subject });
    expect(refusedAgain.status).toBe(403);
  });

  it('answers a caller first, then still refuses another whose purpose does not allow the fields', async () => {
    const allowed = await federation.query(police, BANS, { bsn: PERSONS.subject });
    expect(allowed.status).toBe(200);
    expect(allowed.body.data!.activeBans.underActiveBan).toBe(true);

    const refused = await federation.query(vt, BANS, { bsn: PERSONS.subject });
    expect(refused.status).toBe(403);
    expect(refused.body.data ?? null).toBeNull();
    expect(refused.body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', field: 'Query.activeBans', purpose: 'vt-hit-check' });
  });

  it('lets a node decide its release per call too, whichever purpose asked first', async () => {
    const tokens = new DownstreamTokens(new GatewayKeys(federation.dataDir), systemClock);
    const caller = (purpose: string, org: string, role: string) => ({ iss: 'test', sub: 'worker-1', org, roles: [role], purpose, caseRef: 'C-1', jti: 'j' });
    const document = 'query R($bsns: [String!]!, $refs: [String!]!, $at: DateTime!) { records(bsns: $bsns, subjectRefs: $refs, at: $at) { contact { phone } } }';
    const ask = async (token: string) => {
      const response = await fetch(`${federation.nodes['veilig-thuis'].url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: document, variables: { bsns: [PERSONS.vtOnly], refs: ['ref-1-0000000000000000'], at: new Date().toISOString() } }),
      });
      return { status: response.status, body: (await response.json()) as { data?: any; errors?: { extensions: Record<string, unknown> }[] } };
    };

    const refused = await ask(await tokens.mint('veilig-thuis', caller('reclassering-supervision', 'reclassering', 'reclassering-medewerker')));
    expect(refused.status).toBe(403);
    expect(refused.body.errors![0]!.extensions).toMatchObject({ code: 'PURPOSE_FORBIDS_FIELD', purpose: 'reclassering-supervision' });

    const released = await ask(await tokens.mint('veilig-thuis', caller('vt-hit-check', 'veilig-thuis-rotterdam-rijnmond', 'vt-medewerker')));
    expect(released.status).toBe(200);
    expect(released.body.errors).toBeUndefined();
    expect(released.body.data.records[0].contact.phone).toEqual(expect.any(String));
  });
});
