import { describe, expect, it } from 'vitest';
import { type BanCopy, mergeBans } from '../gateway/api/bans.ts';
import { type NodeBan, unreadable } from '../gateway/federation/person-fetcher.ts';
import type { Partner } from '../lib/partners.ts';
import { type Ban, banActiveAt } from '../lib/records.ts';
import { toNodeRecord } from '../nodes/runtime/node-record.ts';

// DESIGN §5: when a ban counts at t, and how the copies several nodes hold of one ban are merged.

const T = Date.parse('2026-06-01T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('a ban is active at t (DESIGN §5)', () => {
  const ban = (fields: Partial<Parameters<typeof banActiveAt>[0]>) => ({ status: 'ACTIVE', validFrom: '2025-01-01T00:00:00Z', validUntil: null, ...fields });
  it.each([
    ['from validFrom itself', ban({ validFrom: iso(T) }), true],
    ['not a millisecond before validFrom', ban({ validFrom: iso(T + 1) }), false],
    ['until just before validUntil', ban({ validUntil: iso(T + 1) }), true],
    ['not at validUntil itself', ban({ validUntil: iso(T) }), false],
    ['open-ended while ACTIVE', ban({}), true],
    ['revoked after t', ban({ status: 'REVOKED', statusChangedAt: iso(T + 1) }), true],
    ['not revoked at t itself', ban({ status: 'REVOKED', statusChangedAt: iso(T) }), false],
    ['not revoked before t', ban({ status: 'REVOKED', statusChangedAt: iso(T - 86_400_000) }), false],
    ['suspended only after t', ban({ status: 'SUSPENDED', statusChangedAt: iso(T + 86_400_000) }), true],
    ['not suspended before t', ban({ status: 'SUSPENDED', statusChangedAt: iso(T - 1) }), false],
    ['not revoked without a date (when is unknown)', ban({ status: 'REVOKED' }), false],
    ['revoked after t but ended before it', ban({ status: 'REVOKED', statusChangedAt: iso(T + 1), validUntil: iso(T - 1) }), false],
  ])('%s', (_name, b, active) => {
    expect(banActiveAt(b, T)).toBe(active);
  });
});

describe('copies of one ban from several nodes (DESIGN §5)', () => {
  const ref = (bsn: string) => `ref-${bsn}`;
  const copy = (partner: Partner, fields: Partial<NodeBan> = {}): BanCopy => ({
    partner,
    ban: {
      id: 'PN-1',
      kind: 'CONTACT',
      legalBasis: 'art. 38v Sr',
      imposedBy: 'Rechtbank Rotterdam',
      status: 'ACTIVE',
      statusChangedAt: null,
      validFrom: '2025-01-01T00:00:00Z',
      validUntil: null,
      conditions: `as ${partner} holds it`,
      protectedBsns: ['123456782'],
      electronicMonitoring: false,
      victimDevice: false,
      ...fields,
    },
  });

  it('lists one ban for identical copies, reported by every node that holds it, with references for protected persons', () => {
    const [merged, ...more] = mergeBans([copy('RECLASSERING'), copy('OM'), copy('POLITIE')], T, ref);
    expect(more).toEqual([]);
    expect(merged).toMatchObject({ id: 'PN-1', reportedBy: ['POLITIE', 'OM', 'RECLASSERING'], protectedPersonRefs: ['ref-123456782'] });
    expect(JSON.stringify(merged)).not.toContain('"123456782"');
  });

  it('names every person an active copy protects, as contactBanned counts them, and none only an inactive copy names', () => {
    const [merged] = mergeBans(
      [
        copy('OM', { protectedBsns: ['123456782'] }),
        copy('RECLASSERING', { protectedBsns: ['123456782', '111222333'] }),
        copy('POLITIE', { protectedBsns: ['999999990'], status: 'REVOKED', statusChangedAt: iso(T - 1) }),
      ],
      T,
      ref,
    );
    expect(merged!.protectedPersonRefs).toEqual(['ref-123456782', 'ref-111222333']);
  });

  it("takes the fields from the imposing authority's copy: OM for court and prosecutor bans, politie for house bans", () => {
    expect(mergeBans([copy('POLITIE'), copy('OM'), copy('RECLASSERING')], T, ref)[0]).toMatchObject({ conditions: 'as OM holds it' });
    const house = (partner: Partner) => copy(partner, { kind: 'HOUSE', imposedBy: 'Burgemeester Den Haag', area: { description: 'woning' } });
    expect(mergeBans([house('OM'), house('POLITIE')], T, ref)[0]).toMatchObject({ conditions: 'as POLITIE holds it' });
  });

  it("lists a ban any copy of which is active, reported by those copies, described by an active one when the authority's has ended", () => {
    const ended = copy('OM', { validUntil: '2026-04-01T00:00:00Z', protectsCounterpart: true, violatedAt: false });
    const inForce = copy('POLITIE', { protectsCounterpart: false, violatedAt: true });
    const [merged] = mergeBans([ended, inForce], T, ref);
    expect(merged).toMatchObject({ reportedBy: ['POLITIE'], validUntil: null, conditions: 'as POLITIE holds it', violatedAt: true, protectsCounterpart: false });
  });

  it('counts a counterpart as protected when any active copy says so', () => {
    const [merged] = mergeBans([copy('OM', { protectsCounterpart: false }), copy('POLITIE', { protectsCounterpart: true })], T, ref);
    expect(merged!.protectsCounterpart).toBe(true);
  });

  it('lists no ban whose every copy is inactive at t, and orders the rest by id', () => {
    const revoked = copy('OM', { id: 'PN-0', status: 'REVOKED', statusChangedAt: '2026-01-01T00:00:00Z' });
    const later = copy('OM', { id: 'PN-3', validFrom: '2027-01-01T00:00:00Z' });
    expect(mergeBans([copy('OM', { id: 'PN-2' }), revoked, later, copy('POLITIE', { id: 'PN-1' })], T, ref).map((b) => b.id)).toEqual(['PN-1', 'PN-2']);
  });
});

describe('a ban revoked on a date the node does not give (DESIGN §10: statusChangedAt optional)', () => {
  const revoked = { id: 'PN-9', kind: 'CONTACT' as const, status: 'REVOKED', statusChangedAt: null, validFrom: '2025-01-01T00:00:00Z', validUntil: null };
  const record = { bans: [revoked] };

  it('cannot be read for a moment before the request, when it may have been in force: the partner is UNAVAILABLE, not NO_HIT', () => {
    expect(unreadable(record, { at: iso(T), atInPast: true })).toBe(true);
  });

  it('is read as not in force now or later, as its status says', () => {
    expect(unreadable(record, { at: iso(T), atInPast: false })).toBe(false);
    expect(banActiveAt(revoked, T)).toBe(false);
  });

  it('is read as it is for a moment before it began, or with the date given', () => {
    expect(unreadable(record, { at: '2024-06-01T00:00:00Z', atInPast: true })).toBe(false);
    expect(unreadable({ bans: [{ ...revoked, statusChangedAt: iso(T - 1) }] }, { at: iso(T), atInPast: true })).toBe(false);
  });

  describe('at the node that holds it', () => {
    const held: Ban = {
      id: 'PN-9', kind: 'CONTACT', status: 'REVOKED', validFrom: revoked.validFrom, validUntil: null, bsn: '111222333', legalBasis: 'art. 38v Sr', imposedBy: 'OM', protectedBsns: ['123456782'],
      conditions: 'geen contact', electronicMonitoring: false, victimDevice: false,
    };
    const asked = (at: number) =>
      toNodeRecord({ contact: null, bans: [held] }, { defaultContact: { organisation: 'OM' }, location: null, counterpartBsn: '123456782', at, now: T }).bans[0]!;

    it('is sent whole for a moment well before now, when it may have been in force', () => {
      expect(asked(T - 61_000)).toMatchObject({ protectedBsns: ['123456782'], conditions: 'geen contact', protectsCounterpart: true });
    });

    it('is sent as not in force, whom it protects and its terms kept at the node, for now or later', () => {
      // A question without `at` is asked at the gateway's start of the request: a moment before the node's now.
      for (const at of [T - 1_000, T, T + 86_400_000]) {
        expect(asked(at)).toMatchObject({ id: 'PN-9', status: 'REVOKED', protectedBsns: [], conditions: null, protectsCounterpart: false });
      }
    });
  });
});
