import { type Ban, type Contact, type GeoPoint, banActiveAt, banMayHaveRunAt } from '../../lib/records.ts';
import type { PersonRecord } from '../store/store.ts';
import { haversineMeters } from './geo.ts';

/** A stored person as the node API shapes it, computing what the node alone may compute. */
export function toNodeRecord(
  person: PersonRecord,
  context: { defaultContact: Contact; location: GeoPoint | null; counterpartBsn: string | null; at: number; now: number },
) {
  return {
    contact: person.contact ?? context.defaultContact,
    bans: person.bans.map((ban) => (mayBeInForce(ban, context.at, context.now) ? toNodeBan(ban, context.location, context.counterpartBsn) : notInForce(ban, context.counterpartBsn))),
  };
}

/**
 * How far before the node's now an `at` still reads as now: a question without `at` is asked at
 * the gateway's start of the request, which reaches the node later, by another machine's clock.
 */
const NOW_TOLERANCE_MS = 60_000;

/**
 * In force at `at`, or perhaps: revoked or suspended on a date the record does not give, and `at`
 * lies before now within its window. At `at` now or later such a ban is certainly not in force,
 * for it is revoked or suspended already. (For an `at` in the past, however recent, the gateway
 * reads such a ban as unknown whichever way it is sent: it needs only its status and dates.)
 */
function mayBeInForce(ban: Ban, at: number, now: number): boolean {
  return banActiveAt(ban, at) || (at < now - NOW_TOLERANCE_MS && banMayHaveRunAt(ban, at));
}

/**
 * A ban not in force at `at` (ended, revoked, not yet begun): the gateway lists no such ban, and
 * needs only what shows it is not in force. Whom it protects, its terms, whom to notify and its
 * area stay at the node.
 */
function notInForce(ban: Ban, counterpartBsn: string | null) {
  return {
    ...ban,
    statusChangedAt: ban.statusChangedAt ?? null,
    validUntil: ban.validUntil ?? null,
    conditions: null,
    notify: null,
    area: null,
    protectedBsns: [],
    protectsCounterpart: counterpartBsn === null ? null : false,
    violatedAt: null,
  };
}

function toNodeBan(ban: Ban, location: GeoPoint | null, counterpartBsn: string | null) {
  return {
    ...ban,
    statusChangedAt: ban.statusChangedAt ?? null,
    validUntil: ban.validUntil ?? null,
    conditions: ban.conditions ?? null,
    notify: ban.notify ?? null,
    area: ban.area ?? null,
    // Matched here so that protected persons' BSNs need not leave the node (DESIGN §5).
    protectsCounterpart: counterpartBsn === null ? null : ban.protectedBsns.includes(counterpartBsn),
    // Computed here so that the area's centre need not leave the node.
    violatedAt: location === null ? null : violates(ban, location),
  };
}

function violates(ban: Ban, location: GeoPoint): boolean | null {
  const center = ban.area?.center;
  const radius = ban.area?.radiusMeters;
  if (!center || radius === undefined) return null;
  return haversineMeters(location, center) <= radius;
}
