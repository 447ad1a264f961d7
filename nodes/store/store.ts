import type { Ban, Contact } from '../../lib/records.ts';
import type { ImportRecord } from '../runtime/import-records.ts';

/** What a node knows about one person: enough for a hit, a contact route and the bans it holds. */
export interface PersonRecord {
  contact: Contact | null;
  bans: Ban[];
}

/**
 * One store interface, two engines: embedded SQLite for a single machine (`npm start`, tests)
 * and PostgreSQL for an organisation's production infrastructure.
 */
export interface NodeStore {
  /**
   * One entry per BSN, in order; null where the node does not know the person. `withBans: false`
   * skips reading bans (a hit check needs only whether and how to reach): `bans` is then empty.
   */
  lookup(bsns: readonly string[], options?: { withBans?: boolean }): Promise<(PersonRecord | null)[]>;
  /** Upserts all records in one transaction: persons by BSN, bans by id, own records by (type, id). */
  load(records: Iterable<ImportRecord>): Promise<number>;
  count(): Promise<{ persons: number; bans: number; ownRecords: number }>;
  close(): Promise<void>;
}
