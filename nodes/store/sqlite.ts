import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Ban } from '../../lib/records.ts';
import type { OwnRecord } from '../runtime/definition.ts';
import type { ImportRecord } from '../runtime/import-records.ts';
import type { NodeStore, PersonRecord } from './store.ts';

/** How long a load waits for another import's write lock: longer than any import takes. */
const LOAD_BUSY_TIMEOUT_MS = 60 * 60_000;

/**
 * The embedded store: one SQLite file per node (WAL). `subjects` holds every BSN the node knows
 * (with the person's contact route), so a hit check is one primary-key lookup. A subject is known
 * for a person line (`listed`) or for as long as a ban or own record names them: a record moved to
 * another BSN (a typing error put right) takes the old BSN's hit with it, unless something else
 * still names that person.
 */
export class SqliteStore implements NodeStore {
  private readonly db: Database.Database;
  private readonly subjectByBsn: Database.Statement<[string], { contact: string | null }>;
  private readonly bansByBsn: Database.Statement<[string], { body: string }>;
  private readonly readPersons: Database.Transaction<(bsns: readonly string[], withBans: boolean) => (PersonRecord | null)[]>;

  constructor(file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // 64 MiB of page cache: a million-person index stays in memory for lookups and bulk loads.
    this.db.pragma('cache_size = -65536');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS subjects (bsn TEXT PRIMARY KEY, contact TEXT, listed INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS bans (id TEXT PRIMARY KEY, bsn TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS bans_by_bsn ON bans (bsn);
      CREATE TABLE IF NOT EXISTS own_records (
        type TEXT NOT NULL, id TEXT NOT NULL, bsn TEXT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (type, id)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS own_records_by_bsn ON own_records (bsn);
    `);
    // A store made before `listed` existed: every subject it holds stays known, as it was. Checked
    // first without the write lock, which a running import holds for as long as it takes; then
    // again under it, so that a node and an import opening an old store at once add the column once.
    if (!this.hasListed()) {
      this.db.transaction(() => {
        if (!this.hasListed()) this.db.exec('ALTER TABLE subjects ADD COLUMN listed INTEGER NOT NULL DEFAULT 1');
      }).immediate();
    }
    this.subjectByBsn = this.db.prepare('SELECT contact FROM subjects WHERE bsn = ?');
    this.bansByBsn = this.db.prepare('SELECT body FROM bans WHERE bsn = ? ORDER BY id');
    // One read transaction per lookup: `soh import` writes from another process, and its commit
    // between two persons' reads could show a ban moved from one to the other under neither.
    this.readPersons = this.db.transaction((bsns: readonly string[], withBans: boolean) =>
      bsns.map((bsn): PersonRecord | null => {
        const subject = this.subjectByBsn.get(bsn);
        if (!subject) return null;
        return {
          contact: subject.contact ? (JSON.parse(subject.contact) as PersonRecord['contact']) : null,
          bans: withBans ? this.bansByBsn.all(bsn).map((row) => JSON.parse(row.body) as Ban) : [],
        };
      }),
    );
  }

  lookupSync(bsns: readonly string[], { withBans = true }: { withBans?: boolean } = {}): (PersonRecord | null)[] {
    return this.readPersons(bsns, withBans);
  }

  async lookup(bsns: readonly string[], options?: { withBans?: boolean }): Promise<(PersonRecord | null)[]> {
    return this.lookupSync(bsns, options);
  }

  async load(records: Iterable<ImportRecord>): Promise<number> {
    const upsertPerson = this.db.prepare(
      'INSERT INTO subjects (bsn, contact, listed) VALUES (?, ?, 1) ON CONFLICT (bsn) DO UPDATE SET contact = excluded.contact, listed = 1',
    );
    const knowSubject = this.db.prepare('INSERT OR IGNORE INTO subjects (bsn, contact, listed) VALUES (?, NULL, 0)');
    const bsnOfBan = this.db.prepare<[string], { bsn: string }>('SELECT bsn FROM bans WHERE id = ?');
    const bsnOfOwn = this.db.prepare<[string, string], { bsn: string }>('SELECT bsn FROM own_records WHERE type = ? AND id = ?');
    const forgetIfUnnamed = this.db.prepare(
      `DELETE FROM subjects WHERE bsn = @bsn AND listed = 0
         AND NOT EXISTS (SELECT 1 FROM bans WHERE bsn = @bsn) AND NOT EXISTS (SELECT 1 FROM own_records WHERE bsn = @bsn)`,
    );
    const upsertBan = this.db.prepare(
      'INSERT INTO bans (id, bsn, body) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET bsn = excluded.bsn, body = excluded.body',
    );
    const upsertOwn = this.db.prepare(
      'INSERT INTO own_records (type, id, bsn, body) VALUES (?, ?, ?, ?) ON CONFLICT (type, id) DO UPDATE SET bsn = excluded.bsn, body = excluded.body',
    );
    let count = 0;
    // BSNs a record moved away from: once the file is in, each is forgotten unless still named.
    const movedFrom = new Set<string>();
    const noteMove = (before: { bsn: string } | undefined, bsn: string) => {
      if (before && before.bsn !== bsn) movedFrom.add(before.bsn);
    };
    const loadAll = this.db.transaction(() => {
      for (const record of records) {
        count++;
        if (record.type === 'person') {
          upsertPerson.run(record.bsn, record.contact ? JSON.stringify(record.contact) : null);
        } else if (record.type === 'ban') {
          const { type: _type, ...ban } = record as Ban & { type: 'ban' };
          noteMove(bsnOfBan.get(ban.id), ban.bsn);
          knowSubject.run(ban.bsn);
          upsertBan.run(ban.id, ban.bsn, JSON.stringify(ban));
        } else {
          const own = record as OwnRecord;
          noteMove(bsnOfOwn.get(own.type, own.id), own.bsn);
          knowSubject.run(own.bsn);
          upsertOwn.run(own.type, own.id, own.bsn, JSON.stringify(own));
        }
      }
      for (const bsn of movedFrom) forgetIfUnnamed.run({ bsn });
    });
    // Immediate: a deferred transaction that read first could not take the write lock after
    // another import committed in between (SQLITE_BUSY_SNAPSHOT); this one waits its turn, as long
    // as an import can take rather than the default 5 s. FULL: a load `soh import` has reported
    // survives a power loss, which under NORMAL (enough for lookups) may roll back the last commits.
    this.withPragmas({ synchronous: 'FULL', busy_timeout: LOAD_BUSY_TIMEOUT_MS }, () => loadAll.immediate());
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

  private hasListed(): boolean {
    return (this.db.pragma('table_info(subjects)') as { name: string }[]).some((column) => column.name === 'listed');
  }

  /** Runs `work` with these pragmas set on the connection, and its own settings back afterwards. */
  private withPragmas<T>(pragmas: Record<string, string | number>, work: () => T): T {
    const own = Object.keys(pragmas).map((name) => [name, this.db.pragma(name, { simple: true })] as const);
    for (const [name, value] of Object.entries(pragmas)) this.db.pragma(`${name} = ${value}`);
    try {
      return work();
    } finally {
      for (const [name, value] of own) this.db.pragma(`${name} = ${String(value)}`);
    }
  }
}
