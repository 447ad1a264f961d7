import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AREA, AT, PERSONS } from './support/fixtures.ts';
import { type Federation, startFederation } from './support/federation.ts';
import { NODE_IDS } from '../lib/partners.ts';
import { accessRecordsOf, nodeAccessRecords, processingOfTrace } from './support/node-calls.ts';

const HIT_CHECK = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) {
  subjectRef complete anyHit partners { partner status contact { organisation unit phone } } } }`;
const ACTIVE_BANS = `query Bans($bsn: String!, $at: DateTime, $location: GeoPointInput) {
  activeBans(subject: { bsn: $bsn }, at: $at, location: $location) {
    subjectRef complete underActiveBan partners { partner status }
    bans { id kind legalBasis imposedBy reportedBy validFrom validUntil conditions electronicMonitoring victimDevice
           violatedAt protectedPersonRefs area { description municipality } notify { organisation } } } }`;
const CONTACT_BANNED = `query Contact($bsn: String!, $other: String!, $at: DateTime) {
  contactBanned(subject: { bsn: $bsn }, counterpart: { bsn: $other }, at: $at) { complete banned banIds partners { partner status } } }`;

/** One deadline per request; generous enough for a loaded CI machine, asserted in the partner-down tests. */
const DEADLINE_MS = 3_000;

describe('the federation across real processes', () => {
  let federation: Federation;
  let vtToken: string;
  let policeToken: string;

  beforeAll(async () => {
    federation = await startFederation({ deadlineMs: DEADLINE_MS });
    vtToken = await federation.issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1' });
    policeToken = await federation.issuer.token();
  });
  afterAll(() => federation?.stop());

  describe('hitCheck', () => {
    it('answers HIT or NO_HIT per partner with the contact route, never echoing the BSN', async () => {
      const { status, body } = await federation.query(vtToken, HIT_CHECK, { bsn: PERSONS.subject });
      expect(status).toBe(200);
      expect(body.errors).toBeUndefined();
      const check = body.data!.hitCheck;
      expect(check.complete).toBe(true);
      expect(check.anyHit).toBe(true);
      expect(check.subjectRef).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(JSON.stringify(body)).not.toContain(PERSONS.subject);
      const byPartner = Object.fromEntries(check.partners.map((p: any) => [p.partner, p]));
      expect(Object.keys(byPartner)).toEqual(['POLITIE', 'VEILIG_THUIS', 'OM', 'RECLASSERING']);
      expect(byPartner.POLITIE).toMatchObject({ status: 'HIT', contact: { organisation: 'Politie Eenheid Rotterdam' } });
      expect(byPartner.VEILIG_THUIS).toMatchObject({ status: 'HIT', contact: { organisation: 'Veilig Thuis Rotterdam Rijnmond' } });
      // OM holds only bans on the subject: known, with the node's default contact route.
      expect(byPartner.OM).toMatchObject({ status: 'HIT', contact: { organisation: 'Openbaar Ministerie' } });
      expect(byPartner.RECLASSERING.status).toBe('HIT');
    });

    it('answers NO_HIT everywhere for a person nobody knows, and anyHit false only because it is complete', async () => {
      const { body } = await federation.query(vtToken, HIT_CHECK, { bsn: PERSONS.unknown });
      expect(body.data!.hitCheck).toMatchObject({ complete: true, anyHit: false });
      expect(body.data!.hitCheck.partners.map((p: any) => p.status)).toEqual(['NO_HIT', 'NO_HIT', 'NO_HIT', 'NO_HIT']);
      expect(body.data!.hitCheck.partners.every((p: any) => p.contact === null)).toBe(true);
    });

    it('sends each node one request for every root field of a request: their persons share a batch', async () => {
      const sub = `batch-${randomUUID()}`;
      const token = await federation.issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1', sub });
      const query = `query Two($a: String!, $b: String!) {
        a: hitCheck(subject: { bsn: $a }) { anyHit partners { partner status } }
        b: hitCheck(subject: { bsn: $b }) { anyHit partners { partner status } } }`;
      const { status, body } = await federation.query(token, query, { a: PERSONS.subject, b: PERSONS.vtOnly });
      expect(status).toBe(200);
      expect(body.data!.a.partners.map((p: any) => p.status)).toEqual(['HIT', 'HIT', 'HIT', 'HIT']);
      expect(body.data!.b.partners.map((p: any) => p.status)).toEqual(['NO_HIT', 'HIT', 'NO_HIT', 'NO_HIT']);
      for (const node of NODE_IDS) {
        expect(nodeAccessRecords(federation.dataDir, node).filter((record) => record.sub === sub).map((record) => record.subjects), node).toEqual([2]);
      }
    });

    it('asks apart the questions of one request that differ in their arguments: another instant is another batch', async () => {
      const sub = `apart-${randomUUID()}`;
      const token = await federation.issuer.token({ sub });
      const query = `query Two($bsn: String!, $t1: DateTime, $t2: DateTime) {
        then: activeBans(subject: { bsn: $bsn }, at: $t1) { bans { id } }
        later: activeBans(subject: { bsn: $bsn }, at: $t2) { bans { id } } }`;
      const both = await federation.query(token, query, { bsn: PERSONS.subject, t1: AT.may2026, t2: AT.y2028 });
      const may = await federation.query(token, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026 });
      const y2028 = await federation.query(token, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.y2028 });
      expect(both.body.data!.then.bans).toEqual(may.body.data!.activeBans.bans.map(({ id }: { id: string }) => ({ id })));
      expect(both.body.data!.later.bans).toEqual(y2028.body.data!.activeBans.bans.map(({ id }: { id: string }) => ({ id })));
      expect(both.body.data!.then.bans).not.toEqual(both.body.data!.later.bans);
      for (const node of ['politie', 'om', 'reclassering'] as const) {
        // The two-question request made two calls of one person each; the single questions one each.
        expect(nodeAccessRecords(federation.dataDir, node).filter((record) => record.sub === sub).map((record) => record.subjects), node).toEqual([1, 1, 1, 1]);
      }
    });

    it('gives the same subject reference for the same BSN', async () => {
      const first = await federation.query(vtToken, HIT_CHECK, { bsn: PERSONS.vtOnly });
      const second = await federation.query(vtToken, HIT_CHECK, { bsn: PERSONS.vtOnly });
      expect(first.body.data!.hitCheck.subjectRef).toBe(second.body.data!.hitCheck.subjectRef);
      expect(first.body.data!.hitCheck.partners.map((p: any) => p.status)).toEqual(['NO_HIT', 'HIT', 'NO_HIT', 'NO_HIT']);
    });

    it.each([
      ['an invalid check digit', '999998620'],
      ['all zeros', '000000000'],
      ['eight digits', '12345678'],
      ['letters', '12345678a'],
    ])('rejects %s with BAD_USER_INPUT before asking any node', async (_name, bsn) => {
      const { status, body } = await federation.query(vtToken, HIT_CHECK, { bsn });
      expect(status).toBe(400);
      expect(body.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
      expect(JSON.stringify(body)).not.toContain(bsn);
    });
  });

  describe('activeBans', () => {
    it('lists the bans active at a moment, merged by id with every reporting partner', async () => {
      const { body } = await federation.query(policeToken, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026 });
      expect(body.errors).toBeUndefined();
      const check = body.data!.activeBans;
      expect(check).toMatchObject({ complete: true, underActiveBan: true });
      const ids = check.bans.map((b: any) => b.id);
      // Active: B1 (contact), B2 (location), B6 (house ban). B5 was revoked on 2026-03-01.
      expect(ids).toEqual(['HV-0599-2026-0042', 'PN-10-000001-25/1', 'PN-10-000002-25/1']);
      const b1 = check.bans.find((b: any) => b.id === 'PN-10-000001-25/1');
      expect(b1.reportedBy).toEqual(['POLITIE', 'OM', 'RECLASSERING']);
      expect(b1).toMatchObject({ kind: 'CONTACT', legalBasis: 'art. 38v Sr', imposedBy: 'Rechtbank Rotterdam', electronicMonitoring: true });
      expect(b1.protectedPersonRefs).toHaveLength(1);
      expect(b1.protectedPersonRefs[0]).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(JSON.stringify(body)).not.toContain(PERSONS.victim);
      expect(check.bans.find((b: any) => b.id === 'PN-10-000002-25/1').reportedBy).toEqual(['POLITIE', 'OM']);
      expect(check.partners).toEqual([
        { partner: 'POLITIE', status: 'HIT' },
        { partner: 'OM', status: 'HIT' },
        { partner: 'RECLASSERING', status: 'HIT' },
      ]);
    });

    it('counts a ban revoked after `at` as active at `at`', async () => {
      const { body } = await federation.query(policeToken, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.feb2026 });
      expect(body.data!.activeBans.bans.map((b: any) => b.id)).toContain('PN-10-000005-25/1');
    });

    it('leaves out expired, future, revoked and suspended bans', async () => {
      const { body } = await federation.query(policeToken, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.y2028 });
      // Only the open-ended B2 remains; B3 expired, B4 starts 2030, B5 revoked, B7 suspended, B1 and B6 ended.
      expect(body.data!.activeBans.bans.map((b: any) => b.id)).toEqual(['PN-10-000002-25/1']);
    });

    it('reports whether a location lies inside a 5 km circle, computed by the nodes', async () => {
      const inside = await federation.query(policeToken, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.y2028, location: AREA.inside });
      const outside = await federation.query(policeToken, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.y2028, location: AREA.outside });
      expect(inside.body.data!.activeBans.bans[0].violatedAt).toBe(true);
      expect(outside.body.data!.activeBans.bans[0].violatedAt).toBe(false);
      const noLocation = await federation.query(policeToken, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.y2028 });
      expect(noLocation.body.data!.activeBans.bans[0].violatedAt).toBeNull();
    });

    it('answers underActiveBan false for a person without bans', async () => {
      const { body } = await federation.query(policeToken, ACTIVE_BANS, { bsn: PERSONS.unknown });
      expect(body.data!.activeBans).toMatchObject({ complete: true, underActiveBan: false, bans: [] });
    });

    it.each([
      ['a date without offset', { at: '2026-05-05T12:00:00' }],
      ['a latitude beyond 90', { location: { lat: 91, lon: 4 } }],
    ])('rejects %s with BAD_USER_INPUT', async (_name, extra) => {
      const { status, body } = await federation.query(policeToken, ACTIVE_BANS, { bsn: PERSONS.subject, ...extra });
      expect(status).toBe(400);
      expect(body.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    });
  });

  describe('contactBanned', () => {
    it('is true for the protected person and names the bans', async () => {
      const { body } = await federation.query(policeToken, CONTACT_BANNED, { bsn: PERSONS.subject, other: PERSONS.victim, at: AT.may2026 });
      expect(body.data!.contactBanned).toMatchObject({ complete: true, banned: true });
      expect(body.data!.contactBanned.banIds).toEqual(['HV-0599-2026-0042', 'PN-10-000001-25/1']);
    });

    it('is false for an unrelated counterpart', async () => {
      const { body } = await federation.query(policeToken, CONTACT_BANNED, { bsn: PERSONS.subject, other: PERSONS.unrelated, at: AT.may2026 });
      expect(body.data!.contactBanned).toMatchObject({ complete: true, banned: false, banIds: [] });
    });

    it("says per partner whether it holds a ban that protects the counterpart, not whether it knows the subject", async () => {
      const protectedOne = await federation.query(policeToken, CONTACT_BANNED, { bsn: PERSONS.subject, other: PERSONS.victim, at: AT.may2026 });
      const unrelated = await federation.query(policeToken, CONTACT_BANNED, { bsn: PERSONS.subject, other: PERSONS.unrelated, at: AT.may2026 });
      const statuses = (answer: typeof protectedOne) => answer.body.data!.contactBanned.partners.map((p: any) => `${p.partner} ${p.status}`);
      // Every ban partner knows the subject; each copy of the bans protecting the victim is a HIT.
      expect(statuses(protectedOne)).toEqual(['POLITIE HIT', 'OM HIT', 'RECLASSERING HIT']);
      expect(statuses(unrelated)).toEqual(['POLITIE NO_HIT', 'OM NO_HIT', 'RECLASSERING NO_HIT']);
    });
  });

  describe('what the nodes are asked for', () => {
    // Two operations; the one that runs skips protected persons and includes the terms only when asked.
    const DOCUMENT = `query Run($bsn: String!, $terms: Boolean!) {
      activeBans(subject: { bsn: $bsn }, at: "${AT.may2026}") { underActiveBan bans { id conditions @include(if: $terms) protectedPersonRefs @skip(if: true) } } }
    query NotRun($bsn: String!) { activeBans(subject: { bsn: $bsn }) { bans { notify { phone } area { description } } } }`;
    const run = async (sub: string, terms: boolean) => {
      const response = await fetch(`${federation.gatewayUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await federation.issuer.token({ sub })}` },
        body: JSON.stringify({ query: DOCUMENT, operationName: 'Run', variables: { bsn: PERSONS.subject, terms } }),
      });
      return { status: response.status, body: (await response.json()) as { data?: any; errors?: unknown[] } };
    };
    const released = (sub: string) =>
      new Set((['politie', 'om', 'reclassering'] as const).flatMap((node) => nodeAccessRecords(federation.dataDir, node).filter((record) => record.sub === sub).flatMap((record) => record.fieldsReleased)));

    it('are the fields the running operation selects, with @skip and @include applied, not every field its document names', async () => {
      const sub = `agent-${randomUUID()}`;
      const without = await run(sub, false);
      expect(without.status).toBe(200);
      expect(without.body.errors).toBeUndefined();
      expect(without.body.data.activeBans.underActiveBan).toBe(true);
      expect(without.body.data.activeBans.bans[0]).toEqual({ id: expect.any(String) });
      const fields = released(sub);
      expect(fields).toContain('NodeBan.id');
      for (const field of ['NodeBan.conditions', 'NodeBan.protectedBsns', 'NodeBan.notify', 'NodeBan.area']) expect(fields).not.toContain(field);
      const [processing] = gatewayProcessingOf(sub);
      expect(processing.attributes['soh.fields']).toContain('Ban.id');
      for (const field of ['Ban.conditions', 'Ban.protectedPersonRefs', 'Ban.notify', 'PartnerContact.phone']) expect(processing.attributes['soh.fields']).not.toContain(field);

      const other = `agent-${randomUUID()}`;
      const withTerms = await run(other, true);
      expect(withTerms.body.data.activeBans.bans.some((ban: { conditions?: string }) => typeof ban.conditions === 'string')).toBe(true);
      expect(released(other)).toContain('NodeBan.conditions');
    });

    function gatewayProcessingOf(sub: string): any[] {
      const [access] = accessRecordsOf(join(federation.dataDir, 'gateway', 'audit.db'), sub);
      return processingOfTrace(join(federation.dataDir, 'gateway', 'audit.db'), access.trace_id);
    }
  });

  describe('a partner down', () => {
    it('reports a killed node as UNAVAILABLE, never NO_HIT, with PARTNER_UNAVAILABLE and the others intact', async () => {
      const om = federation.nodes.om.process;
      om.kill('SIGKILL');
      await new Promise((resolve) => om.once('exit', resolve));
      const started = Date.now();
      const { status, body } = await federation.query(vtToken, HIT_CHECK, { bsn: PERSONS.unknown });
      expect(Date.now() - started).toBeLessThan(DEADLINE_MS + 1_000);
      expect(status).toBe(200);
      const check = body.data!.hitCheck;
      expect(check.complete).toBe(false);
      expect(check.anyHit).toBeNull();
      expect(check.partners.find((p: any) => p.partner === 'OM').status).toBe('UNAVAILABLE');
      expect(check.partners.filter((p: any) => p.partner !== 'OM').map((p: any) => p.status)).toEqual(['NO_HIT', 'NO_HIT', 'NO_HIT']);
      expect(body.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'PARTNER_UNAVAILABLE', partner: 'OM' }) })]);

      const bans = await federation.query(policeToken, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026 });
      expect(bans.body.data!.activeBans).toMatchObject({ complete: false, underActiveBan: true });
      // B1 and B2 are still known through politie's copies.
      expect(bans.body.data!.activeBans.bans.find((b: any) => b.id === 'PN-10-000001-25/1').reportedBy).toEqual(['POLITIE', 'RECLASSERING']);

      // Nothing found where OM was not asked is no "not under a ban": it is not known.
      const nothing = await federation.query(policeToken, ACTIVE_BANS, { bsn: PERSONS.unknown, at: AT.may2026 });
      expect(nothing.body.data!.activeBans).toMatchObject({ complete: false, underActiveBan: null, bans: [] });
      expect(nothing.body.data!.activeBans.partners).toEqual([
        { partner: 'POLITIE', status: 'NO_HIT' },
        { partner: 'OM', status: 'UNAVAILABLE' },
        { partner: 'RECLASSERING', status: 'NO_HIT' },
      ]);
      expect(nothing.body.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'PARTNER_UNAVAILABLE', partner: 'OM' }) })]);
    });

    it('reports a hanging node as UNAVAILABLE within the deadline', async () => {
      const politie = federation.nodes.politie.process;
      politie.kill('SIGSTOP');
      try {
        const started = Date.now();
        const { status, body } = await federation.query(policeToken, CONTACT_BANNED, { bsn: PERSONS.unknown, other: PERSONS.victim });
        const elapsed = Date.now() - started;
        expect(status).toBe(200);
        expect(elapsed).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
        expect(elapsed).toBeLessThan(DEADLINE_MS + 1_000);
        expect(body.data!.contactBanned.banned).toBeNull();
        expect(body.data!.contactBanned.partners.find((p: any) => p.partner === 'POLITIE').status).toBe('UNAVAILABLE');
      } finally {
        politie.kill('SIGCONT');
      }
    });
  });

  // Last: it stops the gateway.
  describe('a gateway that is stopped', () => {
    it('refuses new connections at once, answers the request in flight, audited, and only then closes', async () => {
      const politie = federation.nodes.politie.process;
      politie.kill('SIGSTOP'); // the request now waits for its deadline
      try {
        const sub = `rolling-restart-${randomUUID()}`;
        const token = await federation.issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1', sub });
        const inFlight = federation.query(token, HIT_CHECK, { bsn: PERSONS.subject });
        await new Promise((resolve) => setTimeout(resolve, 300));
        const stopped = federation.gateway.close();
        // While it drains, the gateway takes no new connection.
        await expect(federation.query(vtToken, HIT_CHECK, { bsn: PERSONS.subject })).rejects.toThrow();

        const { status, body } = await inFlight;
        expect(status).toBe(200);
        expect(body.data!.hitCheck.complete).toBe(false);
        expect(body.data!.hitCheck.partners.find((p: any) => p.partner === 'POLITIE').status).toBe('UNAVAILABLE');
        expect(body.data!.hitCheck.partners.find((p: any) => p.partner === 'VEILIG_THUIS').status).toBe('HIT');
        await stopped;
        const records = accessRecordsOf(join(federation.dataDir, 'gateway', 'audit.db'), sub);
        expect(records).toEqual([expect.objectContaining({ decision: 'ALLOW', outcome: 'PARTIAL' })]);
      } finally {
        politie.kill('SIGCONT');
      }
    });
  });
});
