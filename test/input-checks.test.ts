import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDateTime } from '../lib/records.ts';
import { PERSONS } from './support/fixtures.ts';
import { type Federation, startFederation } from './support/federation.ts';
import { nodeCallCounts } from './support/node-calls.ts';

// Input the gateway must refuse before anything runs: date-times that name no instant as written
// (DESIGN §5 DateTime, §8 BAD_USER_INPUT), and more root fields than the limit however they are
// wrapped (README: 4 root fields, QUERY_TOO_COMPLEX).

describe('isDateTime', () => {
  it.each([
    '2026-06-01T00:00:00Z',
    '2028-02-29T12:00:00Z',
    '2000-02-29T00:00:00Z',
    '2026-12-31T23:59:59Z',
    '2026-01-31T00:00:00Z',
    '2026-04-30T00:00:00Z',
    '2026-06-01T00:00:00.5Z',
    '2026-06-01T00:00:00.123456789Z',
    '2026-06-01T02:00:00+02:00',
    '2026-06-01T00:00:00-00:00',
    '2026-06-01T00:00:00+23:59',
    '2026-06-01T00:00:00.250-09:30',
    '0000-01-01T00:00:00Z',
  ])('accepts %s, which Date.parse reads as the same instant', (value) => {
    expect(isDateTime(value)).toBe(true);
    expect(Number.isFinite(Date.parse(value))).toBe(true);
  });

  it.each([
    ['30 February', '2026-02-30T00:00:00Z'],
    ['29 February in a common year', '2026-02-29T00:00:00Z'],
    ['29 February in a century year not divisible by 400', '2100-02-29T00:00:00Z'],
    ['31 April', '2026-04-31T00:00:00Z'],
    ['31 November', '2026-11-31T00:00:00Z'],
    ['hour 24', '2026-02-28T24:00:00Z'],
    ['minute 60', '2026-02-28T23:60:00Z'],
    ['second 60 (a leap second: a Date cannot hold it)', '2016-12-31T23:59:60Z'],
    ['month 13', '2026-13-01T00:00:00Z'],
    ['month 00', '2026-00-01T00:00:00Z'],
    ['day 00', '2026-01-00T00:00:00Z'],
    ['day 32', '2026-01-32T00:00:00Z'],
    ['offset +24:00', '2026-06-01T00:00:00+24:00'],
    ['offset minutes 60', '2026-06-01T00:00:00+01:60'],
    ['no offset', '2026-06-01T00:00:00'],
    ['no time', '2026-06-01'],
    ['a lowercase t and z', '2026-06-01t00:00:00z'],
    ['an offset without colon', '2026-06-01T00:00:00+0200'],
    ['ten fraction digits', '2026-06-01T00:00:00.1234567890Z'],
    ['non-ASCII digits', '2026-06-0١T00:00:00Z'],
  ])('refuses %s', (_name, value) => {
    expect(isDateTime(value)).toBe(false);
  });

  it('accepts exactly the calendar days that exist, leap years included', () => {
    const pad = (n: number, width = 2) => String(n).padStart(width, '0');
    for (const year of [1900, 2000, 2023, 2024, 2026, 2028, 2100]) {
      for (let month = 0; month <= 13; month++) {
        for (let day = 0; day <= 32; day++) {
          const value = `${pad(year, 4)}-${pad(month)}-${pad(day)}T00:00:00Z`;
          const date = new Date(Date.UTC(year, month - 1, day));
          const exists = month >= 1 && month <= 12 && day >= 1 && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
          expect(isDateTime(value), value).toBe(exists);
          if (exists) expect(Date.parse(value), value).toBe(date.getTime());
        }
      }
    }
  });
});

const POLICE = { org: 'politie', roles: ['politie-medewerker'], purpose: 'police-ban-enforcement', case_ref: 'PL-1' };
const VEILIG_THUIS = { org: 'veilig-thuis-haaglanden', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1' };

/** A hit check on `bsn` under the response key `key`. */
const hitCheck = (key: string, bsn: string) => `${key}: hitCheck(subject: { bsn: "${bsn}" }) { complete anyHit }`;
/** Six different subjects' hit checks: more root fields than the limit of four. */
const SIX_CHECKS = [PERSONS.subject, PERSONS.unrelated, PERSONS.vtOnly, PERSONS.unknown, PERSONS.victim, PERSONS.subject]
  .map((bsn, i) => hitCheck(`c${i}`, bsn))
  .join(' ');

describe('input checks at the gateway', () => {
  let federation: Federation;

  beforeAll(async () => {
    federation = await startFederation();
  }, 60_000);
  afterAll(() => federation?.stop());

  /** What a request refused as a whole looks like: one error with the code, no data. */
  function expectRefused(answer: Awaited<ReturnType<Federation['query']>>, code: string) {
    expect(answer.status).toBe(400);
    expect(answer.body.data ?? null).toBeNull();
    expect(answer.body.errors!.map((error) => error.extensions?.['code'])).toEqual([code]);
  }

  describe('DateTime', () => {
    it('refuses activeBans at a day February does not have with 400 BAD_USER_INPUT, given inline or as a variable', async () => {
      const token = await federation.issuer.token(POLICE);
      const inline = `{ activeBans(subject: { bsn: "${PERSONS.subject}" }, at: "2026-02-30T00:00:00Z") { underActiveBan } }`;
      expectRefused(await federation.query(token, inline), 'BAD_USER_INPUT');
      const variable = `query Bans($bsn: String!, $at: DateTime) { activeBans(subject: { bsn: $bsn }, at: $at) { underActiveBan } }`;
      expectRefused(await federation.query(token, variable, { bsn: PERSONS.subject, at: '2026-02-30T00:00:00Z' }), 'BAD_USER_INPUT');
      expectRefused(await federation.query(token, variable, { bsn: PERSONS.subject, at: '2026-02-28T24:00:00Z' }), 'BAD_USER_INPUT');
    });

    it('answers activeBans at a leap day', async () => {
      const token = await federation.issuer.token(POLICE);
      const answer = await federation.query(token, `{ activeBans(subject: { bsn: "${PERSONS.subject}" }, at: "2028-02-29T12:00:00+01:00") { complete bans { id } } }`);
      expect(answer.status).toBe(200);
      expect(answer.body.errors).toBeUndefined();
      // Only the open-ended location ban runs past B1's end on 2027-01-01.
      expect(answer.body.data).toEqual({ activeBans: { complete: true, bans: [{ id: 'PN-10-000002-25/1' }] } });
    });
  });

  it('refuses a document of more than 16 KiB of text, however few tokens it has, with 400 QUERY_TOO_COMPLEX', async () => {
    const token = await federation.issuer.token(POLICE);
    const padded = `# ${'x'.repeat(17 * 1024)}\n{ activeBans(subject: { bsn: "${PERSONS.subject}" }) { complete } }`;
    expectRefused(await federation.query(token, padded), 'QUERY_TOO_COMPLEX');
    const plain = await federation.query(token, `{ activeBans(subject: { bsn: "${PERSONS.subject}" }) { complete } }`);
    expect(plain.body.data).toEqual({ activeBans: { complete: true } });
  });

  describe('locations', () => {
    it.each([
      ['inline', `{ near: activeBans(subject: { bsn: "${PERSONS.subject}" }) { complete } far: activeBans(subject: { bsn: "${PERSONS.subject}" }, location: { lat: 91, lon: 4 }) { complete } }`, {}],
      [
        'as a variable',
        `query Two($bsn: String!, $where: GeoPointInput) { near: activeBans(subject: { bsn: $bsn }) { complete } far: activeBans(subject: { bsn: $bsn }, location: $where) { complete } }`,
        { bsn: PERSONS.subject, where: { lat: 52, lon: -180.5 } },
      ],
    ])('refuses a request with a location outside WGS84 given %s before any of its root fields asks a node, and no partner circuit opens', async (_name, query, variables) => {
      const token = await federation.issuer.token(POLICE);
      const before = nodeCallCounts(federation.dataDir);
      // More than a circuit's five failures: cut-off calls of the valid root field would open it.
      for (let request = 0; request < 6; request++) expectRefused(await federation.query(token, query, variables), 'BAD_USER_INPUT');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(nodeCallCounts(federation.dataDir)).toEqual(before);
      const answer = await federation.query(token, `{ activeBans(subject: { bsn: "${PERSONS.subject}" }) { complete } }`);
      expect(answer.body.data).toEqual({ activeBans: { complete: true } });
    });
  });

  describe('root fields', () => {
    it.each([
      ['in an inline fragment on Query', `{ ... on Query { ${SIX_CHECKS} } }`],
      ['in an inline fragment without a type condition', `{ ... { ${SIX_CHECKS} } }`],
      ['in a named fragment on Query', `{ ...Checks } fragment Checks on Query { ${SIX_CHECKS} }`],
      ['split between the operation and nested fragments', `{ ${hitCheck('a', PERSONS.subject)} ...Outer } fragment Outer on Query { ... on Query { ...Inner } } fragment Inner on Query { ${SIX_CHECKS} }`],
    ])('refuses six hit checks %s with 400 QUERY_TOO_COMPLEX', async (_name, query) => {
      const token = await federation.issuer.token(VEILIG_THUIS);
      expectRefused(await federation.query(token, query), 'QUERY_TOO_COMPLEX');
    });

    it('answers four hit checks through fragments', async () => {
      const token = await federation.issuer.token(VEILIG_THUIS);
      const query = `{ ${hitCheck('a', PERSONS.subject)} ... on Query { ${hitCheck('b', PERSONS.unrelated)} } ...Two }
        fragment Two on Query { ${hitCheck('c', PERSONS.vtOnly)} ${hitCheck('d', PERSONS.unknown)} }`;
      const answer = await federation.query(token, query);
      expect(answer.status).toBe(200);
      expect(answer.body.errors).toBeUndefined();
      expect(answer.body.data).toEqual({
        a: { complete: true, anyHit: true },
        b: { complete: true, anyHit: false },
        c: { complete: true, anyHit: true },
        d: { complete: true, anyHit: false },
      });
    });

    it('follows a fragment once however often it is spread, as execution does, so a chain of doubling spreads is one field', async () => {
      const token = await federation.issuer.token(VEILIG_THUIS);
      const three = [PERSONS.subject, PERSONS.unrelated, PERSONS.vtOnly].map((bsn, i) => hitCheck(`c${i}`, bsn)).join(' ');
      const twice = await federation.query(token, `{ ...Three ...Three } fragment Three on Query { ${three} }`);
      expect(twice.status).toBe(200);
      expect(Object.keys(twice.body.data!)).toEqual(['c0', 'c1', 'c2']);
      // F0 spreads F1 twice, F1 spreads F2 twice, …: 2^40 hit checks if every spread were expanded.
      const chain = Array.from({ length: 40 }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`).join(' ');
      const doubled = await federation.query(token, `{ ...F0 } ${chain} fragment F40 on Query { ${hitCheck('a', PERSONS.subject)} }`);
      expect(doubled.status).toBe(200);
      expect(doubled.body.data).toEqual({ a: { complete: true, anyHit: true } });
    });

    it('measures depth through fragments, where they are spread', async () => {
      const token = await federation.issuer.token(VEILIG_THUIS);
      const deep = '{ __schema { types { fields { type { ...T } } } } } fragment T on __Type { ofType { ofType { ofType { ofType { name } } } } }';
      expectRefused(await federation.query(token, deep), 'QUERY_TOO_COMPLEX');
    });

    it('ends a cycle of fragment spreads, which validation then refuses', async () => {
      const token = await federation.issuer.token(VEILIG_THUIS);
      const query = `{ ...A } fragment A on Query { ${hitCheck('a', PERSONS.subject)} ...B } fragment B on Query { ... on Query { ...A } }`;
      expectRefused(await federation.query(token, query), 'GRAPHQL_VALIDATION_FAILED');
      const tooMany = `{ ...A } fragment A on Query { ${SIX_CHECKS} ...B } fragment B on Query { ...A }`;
      expectRefused(await federation.query(token, tooMany), 'QUERY_TOO_COMPLEX');
    });
  });
});
