import type { Ban, Contact, GeoPoint } from '../../lib/records.ts';
import type { PersonRecord } from '../store/store.ts';
import { haversineMeters } from './geo.ts';

/** A stored person as the node API shapes it, computing what the node alone may compute. */
export function toNodeRecord(
  person: PersonRecord,
  context: { defaultContact: Contact; location: GeoPoint | null; counterpartBsn: string | null },
) {
  return {
    contact: person.contact ?? context.defaultContact,
    bans: person.bans.map((ban) => toNodeBan(ban, context.location, context.counterpartBsn)),
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
