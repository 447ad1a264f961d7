import { z } from 'zod';
import { isValidBsn } from './bsn.ts';

/**
 * The shared record vocabulary of DESIGN §10: what a node stores and imports, validated once at
 * the edge. Node-specific record types (reports, supervision) extend this in their own folders.
 */
export const bsn = z.string().refine(isValidBsn, 'not a valid BSN (9 digits passing the 11-check)');

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!;
}

/**
 * An RFC 3339 date-time with offset that names an instant as written. Each part is checked
 * against its range because Date.parse rolls over (2026-02-30 becomes 2 March, 24:00 the next
 * day), which would silently move a ban's window or a query's instant. A leap second (:60) is
 * refused: a Date cannot hold it, and every instant here is compared through Date.parse.
 */
export function isDateTime(value: string): boolean {
  const match = RFC3339.exec(value);
  if (!match) return false;
  // Read in place (it runs for every date-time a node or the gateway parses or serialises);
  // Z has no offset digits, which read as 0.
  const month = Number(match[2]);
  const day = Number(match[3]);
  return (
    month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(Number(match[1]), month) &&
    Number(match[4]) <= 23 && Number(match[5]) <= 59 && Number(match[6]) <= 59 &&
    Number(match[7] ?? 0) <= 23 && Number(match[8] ?? 0) <= 59
  );
}
export const dateTime = z.string().refine(isDateTime, 'not an RFC 3339 date-time with offset');

/**
 * A date-time as a node's records hold it: at most milliseconds. Every instant is compared
 * through Date.parse, which cuts finer digits off, so a ban ending at .0009 would end at .000.
 */
export const recordDateTime = dateTime.refine((value) => !/\.\d{4}/.test(value), 'more precise than a millisecond (instants are compared to the millisecond)');

export const contact = z.strictObject({
  organisation: z.string().min(1),
  unit: z.string().min(1).optional(),
  phone: z.string().min(1).optional(),
  email: z.email().optional(),
});
export type Contact = z.infer<typeof contact>;

export const geoPoint = z.strictObject({
  lat: z.number().min(-90).max(90),
  lon: z.number().min(-180).max(180),
});
export type GeoPoint = z.infer<typeof geoPoint>;

export const BAN_KINDS = ['CONTACT', 'LOCATION', 'HOUSE'] as const;
export const BAN_STATUSES = ['ACTIVE', 'REVOKED', 'SUSPENDED'] as const;

export const banArea = z.strictObject({
  description: z.string().min(1),
  municipality: z.string().min(1).optional(),
  center: geoPoint.optional(),
  // Half the equator at most: any circle on the earth, and inside a GraphQL Int (2^31 − 1),
  // which the node could not otherwise serve.
  radiusMeters: z.number().int().positive().max(20_037_509).optional(),
}).refine((area) => (area.center === undefined) === (area.radiusMeters === undefined), {
  // Half a circle would be kept, and every location check against it would answer null.
  message: 'center and radiusMeters come together: an area is a circle, or a description only',
  path: ['radiusMeters'],
});

export const ban = z
  .strictObject({
    id: z.string().min(1).max(128),
    bsn,
    kind: z.enum(BAN_KINDS),
    legalBasis: z.string().min(1),
    imposedBy: z.string().min(1),
    status: z.enum(BAN_STATUSES),
    statusChangedAt: recordDateTime.optional(),
    validFrom: recordDateTime,
    // Required, null for "until revoked" (DESIGN §10 lists it with no optional fields): a ban
    // whose end date was left out by mistake would otherwise run for ever.
    validUntil: recordDateTime.nullable(),
    conditions: z.string().min(1).optional(),
    notify: contact.optional(),
    area: banArea.optional(),
    // Required, as DESIGN §10 lists only conditions, notify and area.municipality as optional: a
    // missing protectedBsns read as [] would make contactBanned a confident "no" for the victim.
    protectedBsns: z.array(bsn),
    electronicMonitoring: z.boolean(),
    victimDevice: z.boolean(),
  })
  .refine((b) => b.validUntil == null || Date.parse(b.validUntil) > Date.parse(b.validFrom), {
    message: 'validUntil must be after validFrom',
    path: ['validUntil'],
  })
  .refine((b) => b.kind === 'CONTACT' || b.area !== undefined, {
    message: 'a LOCATION or HOUSE ban needs its area',
    path: ['area'],
  })
  // A contact or house ban that protects no one would make every contactBanned question about it
  // a confident "no".
  .refine((b) => b.kind === 'LOCATION' || b.protectedBsns.length > 0, {
    message: 'a CONTACT or HOUSE ban protects at least one person',
    path: ['protectedBsns'],
  })
  .refine((b) => !b.protectedBsns.includes(b.bsn), {
    message: 'the person under the ban is not among those it protects',
    path: ['protectedBsns'],
  });
export type Ban = z.infer<typeof ban>;

export const personLine = z.strictObject({ type: z.literal('person'), bsn, contact: contact.optional() });
export const banLine = ban.safeExtend({ type: z.literal('ban') });

/**
 * Revoked or suspended on a date the record does not give (DESIGN §10 makes statusChangedAt
 * optional), and within its window at t: it may have been in force then.
 */
export function banMayHaveRunAt(b: { status: string; statusChangedAt?: string | null; validFrom: string; validUntil?: string | null }, at: number): boolean {
  return b.status !== 'ACTIVE' && b.statusChangedAt == null && banActiveAt({ ...b, status: 'ACTIVE' }, at);
}

/** A ban is active at t when validFrom ≤ t < validUntil (or open-ended) and it is ACTIVE, or was
 * revoked or suspended only after t (DESIGN §5). */
export function banActiveAt(
  b: { status: string; statusChangedAt?: string | null; validFrom: string; validUntil?: string | null },
  at: number,
): boolean {
  if (Date.parse(b.validFrom) > at) return false;
  if (b.validUntil != null && at >= Date.parse(b.validUntil)) return false;
  if (b.status === 'ACTIVE') return true;
  return b.statusChangedAt != null && Date.parse(b.statusChangedAt) > at;
}
