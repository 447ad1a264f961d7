import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Ban } from '../../lib/records.ts';
import type { OwnRecord } from '../runtime/definition.ts';
import type { ImportRecord } from '../runtime/import-records.ts';
import type { NodeStore, PersonRecord } from './store.ts';

/**
 * The embedded store: one SQLite file per node (WAL). `subjects` holds every BSN the node knows
 * (with the person's contact route), so a hit check is one primary-key lookup.
 */
export class SqliteStore implements NodeStore {
  private readonly db: Database.Database;
  private readonly subjectByBsn: Database.Statement<[string], { contact: string | null }>;
  private readonly bansByBsn: Database.Statement<[string], { body: string }>;

  constructor(file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // 64 MiB of page cache: a million-person index stays in memory for lookups and bulk loads.
    this.db.pragma('cache_size = -65536');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS subjects (bsn TEXT PRIMARY KEY, contact TEXT) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS bans (id TEXT PRIMARY KEY, bsn TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS bans_by_bsn ON bans (bsn);
      CREATE TABLE IF NOT EXISTS own_records (
        type TEXT NOT NULL, id TEXT NOT NULL, bsn TEXT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (type, id)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS own_records_by_bsn ON own_records (bsn);
    `);
    this.subjectByBsn = this.db.prepare('SELECT contact FROM subjects WHERE bsn = ?');
    this.bansByBsn = this.db.prepare('SELECT body FROM bans WHERE bsn = ? ORDER BY id');
  }

  lookupSync(bsns: readonly string[], { withBans = true }: { withBans?: boolean } = {}): (PersonRecord | null)[] {
    return bsns.map((bsn) => {
      const subject = this.subjectByBsn.get(bsn);
      if (!subject) return null;
      return {
        contact: subject.contact ? JSON.parse(subject.contact) : null,
        bans: withBans ? this.bansByBsn.all(bsn).map((row) => JSON.parse(row.body) as Ban) : [],
      };
    });
  }

  async lookup(bsns: readonly string[], options?: { withBans?: boolean }): Promise<(PersonRecord | null)[]> {
    return this.lookupSync(bsns, options);
  }

  async load(records: Iterable<ImportRecord>): Promise<number> {
    const upsertPerson = this.db.prepare(
      'INSERT INTO subjects (bsn, contact) VALUES (?, ?) ON CONFLICT (bsn) DO UPDATE SET contact = excluded.contact',
    );
    const knowSubject = this.db.prepare('INSERT OR IGNORE INTO subjects (bsn, contact) VALUES (?, NULL)');
    const upsertBan = this.db.prepare(
      'INSERT INTO bans (id, bsn, body) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET bsn = excluded.bsn, body = excluded.body',
    );
    const upsertOwn = this.db.prepare(
      'INSERT INTO own_records (type, id, bsn, body) VALUES (?, ?, ?, ?) ON CONFLICT (type, id) DO UPDATE SET bsn = excluded.bsn, body = excluded.body',
    );
    let count = 0;
    this.db.transaction(() => {
      for (const record of records) {
        count++;
        if (record.type === 'person') {
          upsertPerson.run(record.bsn, record.contact ? JSON.stringify(record.contact) : null);
        } else if (record.type === 'ban') {
          const { type: _type, ...ban } = record as Ban & { type: 'ban' };
          knowSubject.run(ban.bsn);
          upsertBan.run(ban.id, ban.bsn, JSON.stringify(ban));
        } else {
          const own = record as OwnRecord;
          knowSubject.run(own.bsn);
          upsertOwn.run(own.type, own.id, own.bsn, JSON.stringify(own));
        }
      }
    })();
    return count;
  }

  async count() {
    const one = (sql: string) => (this.db.prepare(sql).get() as { n: number }).n;
    return {
      persons: one('SELECT count(*) AS n FROM subjects'),
      bans: one('SELECT count(*) AS n FROM bans'),
      ownRecords: one('SELECT count(*) AS n FROM own_records'),
    };
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
