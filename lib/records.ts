import { z } from 'zod';
import { isValidBsn } from './bsn.ts';

/**
 * The shared record vocabulary of DESIGN §10: what a node stores and imports, validated once at
 * the edge. Node-specific record types (reports, supervision) extend this in their own folders.
 */
export const bsn = z.string().refine(isValidBsn, 'not a valid BSN (9 digits passing the 11-check)');

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
export function isDateTime(value: string): boolean {
  return RFC3339.test(value) && !Number.isNaN(Date.parse(value));
}
export const dateTime = z.string().refine(isDateTime, 'not an RFC 3339 date-time with offset');

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
  radiusMeters: z.number().int().positive().optional(),
});

export const ban = z
  .strictObject({
    id: z.string().min(1).max(128),
    bsn,
    kind: z.enum(BAN_KINDS),
    legalBasis: z.string().min(1),
    imposedBy: z.string().min(1),
    status: z.enum(BAN_STATUSES),
    statusChangedAt: dateTime.optional(),
    validFrom: dateTime,
    validUntil: dateTime.nullable().optional(),
    conditions: z.string().min(1).optional(),
    notify: contact.optional(),
    area: banArea.optional(),
    protectedBsns: z.array(bsn).default([]),
    electronicMonitoring: z.boolean().default(false),
    victimDevice: z.boolean().default(false),
  })
  .refine((b) => b.validUntil == null || Date.parse(b.validUntil) > Date.parse(b.validFrom), {
    message: 'validUntil must be after validFrom',
    path: ['validUntil'],
  });
export type Ban = z.infer<typeof ban>;

export const personLine = z.strictObject({ type: z.literal('person'), bsn, contact: contact.optional() });
export const banLine = ban.safeExtend({ type: z.literal('ban') });

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
