import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { StoredKey } from '../keys.ts';
import { type ChainedRecord, type SignedHead, ZERO_HASH, chain, signHead } from './chain.ts';
import type { AuditRecord } from './records.ts';

/**
 * One component's append-only, hash-chained audit log in an embedded SQLite file (WAL,
 * synchronous=FULL: a committed record is on disk). Appends made in the same tick share one
 * commit and one head signature; each append's promise settles only once its commit is durable,
 * so no answer leaves before its record.
 */
export class AuditLog {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly writeHead: Database.Statement;
  private last: { seq: number; hash: string };
  private pending: { record: AuditRecord; resolve: () => void; reject: (error: Error) => void }[] = [];
  private flushScheduled = false;
  private lastWriteFailed = false;

  constructor(
    readonly file: string,
    private readonly key: StoredKey,
    options: { maxBytes?: number } = {},
  ) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    createTables(this.db);
    if (options.maxBytes) {
      const pageSize = Number(this.db.pragma('page_size', { simple: true }));
      this.db.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxBytes / pageSize))}`);
    }
    this.insert = this.db.prepare(
      `INSERT INTO records (seq, kind, trace_id, subject_ref, purpose, requester_org, requester_sub, time, body)
       VALUES (@seq, @kind, @trace_id, @subject_ref, @purpose, @requester_org, @requester_sub, @time, @body)`,
    );
    this.writeHead = this.db.prepare(
      `INSERT INTO head (id, seq, hash, kid, signature) VALUES (1, @seq, @hash, @kid, @signature)
       ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, kid = excluded.kid, signature = excluded.signature`,
    );
    const row = this.db.prepare('SELECT seq, body FROM records ORDER BY seq DESC LIMIT 1').get() as { seq: number; body: string } | undefined;
    this.last = row ? { seq: row.seq, hash: (JSON.parse(row.body) as ChainedRecord).hash } : { seq: 0, hash: ZERO_HASH };
  }

  /** False after a write failed, until one succeeds again: /readyz reports it. */
  get healthy(): boolean {
    return !this.lastWriteFailed;
  }

  append(record: AuditRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ record, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  appendAll(records: AuditRecord[]): Promise<void> {
    return Promise.all(records.map((record) => this.append(record))).then(() => undefined);
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    const start = this.last;
    try {
      this.db.transaction(() => {
        let previous = start;
        for (const { record } of batch) {
          const chained = chain(record as unknown as Record<string, unknown>, previous) as ChainedRecord & AuditRecord;
          this.insert.run(indexColumns(chained));
          previous = chained;
        }
        this.writeHead.run(signHead(previous.seq, previous.hash, this.key));
        this.last = previous;
      })();
    } catch (error) {
      this.last = start;
      this.lastWriteFailed = true;
      const failure = new AuditWriteError(error);
      for (const entry of batch) entry.reject(failure);
      return;
    }
    this.lastWriteFailed = false;
    for (const entry of batch) entry.resolve();
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}

export class AuditWriteError extends Error {
  constructor(cause: unknown) {
    super('the audit record could not be written', { cause });
    this.name = 'AuditWriteError';
  }
}

function createTables(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS records (
      seq INTEGER PRIMARY KEY,
      kind TEXT NOT NULL,
      trace_id TEXT,
      subject_ref TEXT,
      purpose TEXT,
      requester_org TEXT,
      requester_sub TEXT,
      time INTEGER NOT NULL,
      body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS records_trace ON records (trace_id);
    CREATE INDEX IF NOT EXISTS records_subject ON records (subject_ref) WHERE subject_ref IS NOT NULL;
    CREATE INDEX IF NOT EXISTS records_purpose ON records (purpose, time) WHERE kind = 'access';
    CREATE INDEX IF NOT EXISTS records_requester ON records (requester_sub, time) WHERE kind = 'access';
    CREATE TABLE IF NOT EXISTS head (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      seq INTEGER NOT NULL,
      hash TEXT NOT NULL,
      kid TEXT NOT NULL,
      signature TEXT NOT NULL
    );
  `);
}

function indexColumns(record: ChainedRecord & AuditRecord) {
  const access = record.type === 'access' ? record : null;
  const processing = record.type === 'processing' ? record : null;
  return {
    seq: record.seq,
    kind: record.type,
    trace_id: record.trace_id,
    subject_ref: processing?.attributes['dpl.core.data_subject_id'] ?? null,
    purpose: access?.purpose ?? null,
    requester_org: access?.requester.org ?? null,
    requester_sub: access?.requester.sub ?? null,
    time: access ? Date.parse(access.time) : (processing?.start_time ?? 0),
    body: JSON.stringify(record),
  };
}

/** Read side of a log file, for verification and the access-log query (never writes). */
export function openAuditReader(file: string): Database.Database {
  return new Database(file, { readonly: true, fileMustExist: true });
}

export function readHead(db: Database.Database): SignedHead | null {
  return (db.prepare('SELECT seq, hash, kid, signature FROM head WHERE id = 1').get() as SignedHead | undefined) ?? null;
}
