import type { z } from 'zod';
import type { Partner } from '../../lib/partners.ts';
import type { Contact } from '../../lib/records.ts';
import type { Rng } from './random.ts';
import type { ImportRecord } from './import-records.ts';

/**
 * What makes one organisation's node: its id, its default contact route, the record types it
 * accepts besides `person`, and how synthetic data for it is generated. Everything else (server,
 * token check, release policy, audit, store) is shared runtime.
 */
export interface NodeDefinition {
  id: string;
  partner: Partner;
  defaultPort: number;
  /** The contact route given when a record carries none of its own. */
  defaultContact: Contact;
  /** Whether `ban` lines are accepted (politie, om, reclassering). */
  acceptsBans: boolean;
  /** The organisation's own record types: each makes its subject known to the node. */
  ownRecordTypes: Record<string, z.ZodType<OwnRecord>>;
  /** Synthetic records for one person of the seed population (see nodes/runtime/seed.ts). */
  seed(person: SeedPerson, rng: Rng): ImportRecord[];
}

export interface OwnRecord {
  type: string;
  id: string;
  bsn: string;
  [field: string]: unknown;
}

/** One synthetic person and the bans the whole chain holds on them, shared by every node's seeder. */
export interface SeedPerson {
  bsn: string;
  index: number;
  /** Which partners know this person. */
  knownBy: ReadonlySet<Partner>;
  region: SeedRegion;
  bans: SeedBan[];
}

export interface SeedRegion {
  name: string;
  municipality: string;
  court: string;
  politieEenheid: string;
  lat: number;
  lon: number;
}

export interface SeedBan {
  ban: import('../../lib/records.ts').Ban;
  /** The nodes holding a copy, and each copy's status where it differs from the imposer's. */
  copies: Partial<Record<Partner, { status?: 'ACTIVE' | 'REVOKED' | 'SUSPENDED'; statusChangedAt?: string }>>;
}

export function defineNode(definition: NodeDefinition): NodeDefinition {
  return definition;
}
