import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenBuckets } from '../gateway/rate-limits.ts';
import { fixedClock } from '../lib/clock.ts';
import { NODE_IDS } from '../lib/partners.ts';
import { AREA, AT, PERSONS } from './support/fixtures.ts';
import { type Federation, startFederation } from './support/federation.ts';
import { accessRecordsOf, nodeAccessRecords, nodeCallSubjects, processingOfTrace } from './support/node-calls.ts';

// DESIGN §8: RATE_LIMITED (429, with Retry-After) per caller, and for Veilig Thuis checks per
// subject. A refused request asks no node, for none of the persons it names, and is audited as denied.

const HIT_CHECK = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { complete anyHit } }`;
const ACTIVE_BANS = `query Bans($bsn: String!) { activeBans(subject: { bsn: $bsn }) { complete underActiveBan } }`;

/** At one request a minute the wait is up to 60 s: less by however long the earlier requests took. */
function expectRetryAfterWithinAMinute(headers: Headers) {
  expect(headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
  expect(Number(headers.get('retry-after'))).toBeLessThanOrEqual(60);
  expect(Number(headers.get('retry-after'))).toBeGreaterThan(30);
}

describe('token buckets', () => {
  it('allow a burst, then refuse with the seconds until the next request fits, and refill over time', () => {
    const clock = fixedClock(Date.parse('2026-06-01T00:00:00Z'));
    const buckets = new TokenBuckets({ burst: 2, perMinute: 6 }, clock);
    expect([buckets.take('a'), buckets.take('a')]).toEqual([null, null]);
    expect(buckets.take('a')).toBe(10);
    expect(buckets.take('b')).toBeNull();
    clock.set(clock.now() + 9_000);
    expect(buckets.take('a')).toBe(1);
    clock.set(clock.now() + 1_000);
    expect(buckets.take('a')).toBeNull();
    clock.set(clock.now() + 3_600_000);
    expect([buckets.take('a'), buckets.take('a'), buckets.take('a')]).toEqual([null, null, 10]);
  });
});

describe('token buckets across a clock step', () => {
  it('take a clock stepped back as no time passed, not as an hour to wait out', () => {
    const clock = fixedClock(Date.parse('2026-06-01T00:00:00Z'));
    const buckets = new TokenBuckets({ burst: 2, perMinute: 6 }, clock);
    expect([buckets.take('a'), buckets.take('a')]).toEqual([null, null]);
    clock.set(clock.now() - 3_600_000);
    // As before the step: 10 s until one request fits.
    expect(buckets.take('a')).toBe(10);
    clock.set(clock.now() + 10_000);
    expect(buckets.take('a')).toBeNull();
  });
});

describe('token buckets kept in memory', () => {
  it('are swept once full again, also after a clock stepped back', () => {
    const clock = fixedClock(Date.parse('2026-06-01T00:00:00Z'));
    const buckets = new TokenBuckets({ burst: 2, perMinute: 6 }, clock);
    const held = () => (buckets as unknown as { buckets: Map<string, unknown> }).buckets.size;
    for (let i = 0; i < 50; i++) buckets.take(`caller-${i}`);
    expect(held()).toBe(50);
    // An hour back (the step itself counts as no time), then long enough for every bucket to be
    // full again: a take then sweeps them, as it would have without the step.
    clock.set(clock.now() - 3_600_000);
    buckets.take('another');
    clock.set(clock.now() + 61_000);
    buckets.take('another');
    expect(held()).toBe(1);
  });
});

describe('token buckets taken together', () => {
  it('take one request per key, a key named twice taking two, all or none', () => {
    const clock = fixedClock(Date.parse('2026-06-01T00:00:00Z'));
    const buckets = new TokenBuckets({ burst: 2, perMinute: 6 }, clock);
    expect(buckets.takeAll(['a', 'a'])).toBeNull();
    // 'b' would fit, 'a' would not: nothing is taken, and the wait is until 'a' fits.
    expect(buckets.takeAll(['b', 'a'])).toBe(10);
    expect([buckets.take('b'), buckets.take('b'), buckets.take('b')]).toEqual([null, null, 10]);
    expect(buckets.takeAll(['c', 'c', 'c'])).toBe(20);
    expect(buckets.take('c')).toBeNull();
  });
});

describe('rate limits at the gateway (DESIGN §8)', () => {
  let federation: Federation;

  beforeAll(async () => {
    federation = await startFederation({
      gateway: { rateLimits: { perCaller: { burst: 3, perMinute: 1 }, perSubject: { burst: 4, perMinute: 1 } } },
    });
  }, 60_000);
  afterAll(() => federation?.stop());

  const vtCaller = (sub: string) =>
    federation.issuer.token({ sub, org: 'veilig-thuis-haaglanden', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1' });

  it('refuses a caller beyond its limit with 429 RATE_LIMITED and Retry-After, asking no node, and audits it', async () => {
    const sub = `busy-${randomUUID()}`;
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await federation.query(await federation.issuer.token({ sub }), ACTIVE_BANS, { bsn: PERSONS.unrelated }));
    expect(answers.slice(0, 3).map((answer) => answer.status)).toEqual([200, 200, 200]);
    const refused = answers[3]!;
    expect(refused.status).toBe(429);
    expectRetryAfterWithinAMinute(refused.headers);
    expect(refused.body.errors!.map((error) => error.extensions!['code'])).toEqual(['RATE_LIMITED']);

    const records = accessRecordsOf(join(federation.dataDir, 'gateway', 'audit.db'), sub);
    expect(records.map((record) => record.decision)).toEqual(['ALLOW', 'ALLOW', 'ALLOW', 'DENY:RATE_LIMITED']);
    // Refused before its purpose was bound, it is still on record under the purpose's activity and legal basis.
    expect(records[3]).toMatchObject({ purpose: 'police-ban-enforcement', processingActivity: records[0].processingActivity, legalBasis: records[0].legalBasis });
    expect(records[0].processingActivity).not.toBe('unknown');
    // Three answered requests reached the three ban-holding nodes, once each; the refused one reached none.
    const calls = Object.fromEntries(NODE_IDS.map((node) => [node, nodeAccessRecords(federation.dataDir, node).filter((record) => record.sub === sub).length]));
    expect(calls).toEqual({ politie: 3, 'veilig-thuis': 0, om: 3, reclassering: 3 });

    // Another caller of the same organisation is not held back.
    const other = await federation.query(await federation.issuer.token({ sub: `calm-${randomUUID()}` }), ACTIVE_BANS, { bsn: PERSONS.unrelated });
    expect(other.status).toBe(200);
  });

  it('refuses Veilig Thuis checks of one subject beyond its limit, whoever asks, without naming the BSN', async () => {
    const allowed = [];
    for (let i = 0; i < 4; i++) allowed.push((await federation.query(await vtCaller(`vt-a-${randomUUID()}`), HIT_CHECK, { bsn: PERSONS.vtOnly })).status);
    const thirdSub = `vt-c-${randomUUID()}`;
    const third = await federation.query(await vtCaller(thirdSub), HIT_CHECK, { bsn: PERSONS.vtOnly });
    expect(allowed).toEqual([200, 200, 200, 200]);
    expect(third.status).toBe(429);
    expectRetryAfterWithinAMinute(third.headers);
    expect(third.body.errors!.map((error) => error.extensions!['code'])).toEqual(['RATE_LIMITED']);
    expect(JSON.stringify(third.body)).not.toContain(PERSONS.vtOnly);
    expect(accessRecordsOf(join(federation.dataDir, 'gateway', 'audit.db'), thirdSub).map((record) => record.decision)).toEqual(['DENY:RATE_LIMITED']);
    expect(NODE_IDS.filter((node) => nodeCallSubjects(federation.dataDir)[node].has(thirdSub))).toEqual([]);

    // Another subject can still be checked, by the same worker.
    const otherSubject = await federation.query(await vtCaller(thirdSub), HIT_CHECK, { bsn: PERSONS.unknown });
    expect(otherSubject.status).toBe(200);
  });

  it('refuses a request whole when one of its subjects is over the limit or invalid: no subject of it is looked up', async () => {
    const TWO_CHECKS = `query Two($first: String!, $second: String!) {
      a: hitCheck(subject: { bsn: $first }) { complete } b: hitCheck(subject: { bsn: $second }) { complete } }`;
    for (let i = 0; i < 4; i++) expect((await federation.query(await vtCaller(`vt-d-${randomUUID()}`), HIT_CHECK, { bsn: PERSONS.victim })).status).toBe(200);

    const overSub = `vt-e-${randomUUID()}`;
    const over = await federation.query(await vtCaller(overSub), TWO_CHECKS, { first: PERSONS.unrelated, second: PERSONS.victim });
    expect(over.status).toBe(429);
    expect(over.body.errors!.map((error) => error.extensions!['code'])).toEqual(['RATE_LIMITED']);

    const invalidSub = `vt-f-${randomUUID()}`;
    const invalid = await federation.query(await vtCaller(invalidSub), TWO_CHECKS, { first: PERSONS.unrelated, second: '999998620' });
    expect(invalid.status).toBe(400);
    expect(invalid.body.errors!.map((error) => error.extensions!['code'])).toEqual(['BAD_USER_INPUT']);

    // Give a node call that should not have happened time to land in a node's audit log.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const calls = nodeCallSubjects(federation.dataDir);
    expect(NODE_IDS.filter((node) => calls[node].has(overSub) || calls[node].has(invalidSub))).toEqual([]);
    const gatewayLog = join(federation.dataDir, 'gateway', 'audit.db');
    // Written before each answer left: no partner was asked for either.
    expect(accessRecordsOf(gatewayLog, overSub)).toMatchObject([{ decision: 'DENY:RATE_LIMITED', partners: [] }]);
    expect(accessRecordsOf(gatewayLog, invalidSub)).toMatchObject([{ decision: 'DENY:BAD_USER_INPUT', partners: [] }]);
  });

  it('does not limit police ban checks per subject', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await federation.query(await federation.issuer.token({ sub: `police-${randomUUID()}` }), ACTIVE_BANS, { bsn: PERSONS.subject })).status);
    }
    expect(statuses).toEqual([200, 200, 200]);
  });
});

describe('location checks per caller and subject', () => {
  let federation: Federation;

  beforeAll(async () => {
    federation = await startFederation({ gateway: { rateLimits: { locationChecks: { burst: 2, perMinute: 1 } } } });
  }, 60_000);
  afterAll(() => federation?.stop());

  it("answers a caller's location checks of one subject past its limit without violatedAt, the bans still shown, with RATE_LIMITED next to them", async () => {
    const WHERE = `query Where($bsn: String!, $location: GeoPointInput) {
      activeBans(subject: { bsn: $bsn }, at: "${AT.may2026}", location: $location) { complete underActiveBan bans { id kind violatedAt } } }`;
    const sub = `officer-${randomUUID()}`;
    const ask = async (caller: string, bsn: string, location: { lat: number; lon: number } | null = AREA.inside) =>
      federation.query(await federation.issuer.token({ sub: caller }), WHERE, { bsn, location });
    const locationBan = (answer: Awaited<ReturnType<typeof ask>>) => answer.body.data!.activeBans.bans.find((ban: { kind: string }) => ban.kind === 'LOCATION');

    const allowed = [await ask(sub, PERSONS.subject), await ask(sub, PERSONS.subject, AREA.outside)];
    expect(allowed.map((answer) => [answer.status, answer.body.errors, locationBan(answer).violatedAt])).toEqual([[200, undefined, true], [200, undefined, false]]);

    // The third: the bans, all of them, but not where they are.
    const limited = await ask(sub, PERSONS.subject);
    expect(limited.status).toBe(200);
    expect(limited.body.data!.activeBans).toMatchObject({ complete: true, underActiveBan: true });
    expect(limited.body.data!.activeBans.bans.map((ban: { id: string }) => ban.id)).toEqual(allowed[0]!.body.data!.activeBans.bans.map((ban: { id: string }) => ban.id));
    expect(locationBan(limited).violatedAt).toBeNull();
    expect(limited.body.errors!.map((error) => error.extensions)).toEqual([{ code: 'RATE_LIMITED', retryAfter: expect.any(Number) }]);
    expect(limited.body.errors![0]!.extensions!['retryAfter']).toBeGreaterThan(0);
    expect(limited.body.errors![0]!.extensions!['retryAfter']).toBeLessThanOrEqual(60);
    // On record as a partial answer, and its processing record does not claim violatedAt was released.
    const gatewayLog = join(federation.dataDir, 'gateway', 'audit.db');
    expect(accessRecordsOf(gatewayLog, sub).map((record) => record.outcome)).toEqual(['ALLOWED', 'ALLOWED', 'PARTIAL']);
    const processing = processingOfTrace(gatewayLog, accessRecordsOf(gatewayLog, sub)[2].trace_id);
    expect(processing).toHaveLength(1);
    expect(processing[0]!.attributes['soh.fields']).not.toContain('Ban.violatedAt');
    expect(processing[0]!.attributes['soh.fields']).toContain('Ban.kind');
    expect(processing[0]!.attributes['soh.withheld']).toEqual(['Ban.violatedAt']);
    const allowedProcessing = processingOfTrace(gatewayLog, accessRecordsOf(gatewayLog, sub)[0].trace_id);
    expect(allowedProcessing[0]!.attributes['soh.fields']).toContain('Ban.violatedAt');
    expect(allowedProcessing[0]!.attributes['soh.withheld']).toBeUndefined();

    // Only that caller's checks of that subject: a question without a location, another subject,
    // or another officer are not held back.
    expect((await ask(sub, PERSONS.subject, null)).body.errors).toBeUndefined();
    expect((await ask(sub, PERSONS.unrelated)).body.errors).toBeUndefined();
    const colleague = await ask(`colleague-${randomUUID()}`, PERSONS.subject);
    expect([colleague.body.errors, locationBan(colleague).violatedAt]).toEqual([undefined, true]);
  });

  it('sends a location to no node, and counts no check, when the question does not ask for violatedAt', async () => {
    const WITHOUT = `query Bans($bsn: String!, $location: GeoPointInput) {
      activeBans(subject: { bsn: $bsn }, at: "${AT.may2026}", location: $location) { complete bans { id kind } } }`;
    const sub = `officer-${randomUUID()}`;
    const token = await federation.issuer.token({ sub });
    for (let i = 0; i < 4; i++) {
      const answer = await federation.query(token, WITHOUT, { bsn: PERSONS.subject, location: AREA.inside });
      expect([answer.status, answer.body.errors]).toEqual([200, undefined]);
    }
    // The whole budget of two is still there for questions that do ask.
    const WHERE = `query Where($bsn: String!, $location: GeoPointInput) {
      activeBans(subject: { bsn: $bsn }, at: "${AT.may2026}", location: $location) { bans { kind violatedAt } } }`;
    for (let i = 0; i < 2; i++) expect((await federation.query(token, WHERE, { bsn: PERSONS.subject, location: AREA.inside })).body.errors).toBeUndefined();
  });
});
