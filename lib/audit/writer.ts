import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type KeyObject, createPublicKey } from 'node:crypto';
import Database from 'better-sqlite3';
import { ConfigError } from '../config.ts';
import { type ChainedRecord, type SignedHead, ZERO_HASH, chain, headBreak, signHead } from './chain.ts';
import type { AuditRecord } from './records.ts';

/**
 * What a log is searched by. Every log finds the records of a trace; the gateway's also finds
 * requests by subject, purpose and requester (accessLog, DESIGN §7). A node is only ever asked
 * for traces, and each index it does not need would cost every one of its commits a B-tree write.
 */
export type AuditSearch = 'traces' | 'access-log';

/** About 40 MiB of WAL: the checkpoint thread copies it back long before (checkpointer-thread.ts). */
const BACKSTOP_CHECKPOINT_FRAMES = 10_000;

export interface WriterOptions {
  file: string;
  key: { kid: string; privateKey: KeyObject };
  /** The public keys, by kid, of every key the component holds: after a rotation the head was signed by one before `key`. */
  heldKeys?: ReadonlyMap<string, KeyObject>;
  maxBytes?: number;
  search?: AuditSearch;
}

/**
 * The synchronous core of an audit log: one SQLite file in WAL mode, records chained in commit
 * order, and the head re-signed in the same commit. A commit writes its WAL frames into the page
 * cache and does not wait for the disk (synchronous=NORMAL: SQLite itself syncs only around
 * checkpoints); AuditLog makes commits durable with an fdatasync of the WAL before it
 * acknowledges them. Checkpoints belong to the log's checkpoint thread; the writer copies the
 * WAL back itself only as a backstop, when it has grown far past what that thread lets it reach.
 *
 * It opens only a log whose last record is the one its head names, signed with the writer's key:
 * going on from a log cut short (or with its head removed) would sign the shortened chain, and
 * `soh audit verify` could no longer tell that records were taken away.
 */
export class AuditWriter {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly writeHead: Database.Statement;
  /** Built once: better-sqlite3 wraps a transaction function in four variants, each with its own properties. */
  private readonly appendInOneCommit: (records: readonly AuditRecord[]) => void;
  private last: { seq: number; hash: string };

  constructor(private readonly options: WriterOptions) {
    mkdirSync(dirname(options.file), { recursive: true, mode: 0o700 });
    this.db = new Database(options.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_FRAMES}`);
    createTables(this.db, options.search ?? 'access-log');
    this.last = this.signedEnd();
    // At start-up, off the request path: the database file holds its tables from the first moment.
    this.db.pragma('wal_checkpoint(PASSIVE)');
    if (options.maxBytes) {
      const pageSize = Number(this.db.pragma('page_size', { simple: true }));
      const pages = Number(this.db.pragma('page_count', { simple: true }));
      // SQLite would quietly raise a limit below the log's size to that size: the component would
      // start ready and fail closed at its first record.
      if (Math.floor(options.maxBytes / pageSize) <= pages) {
        this.db.close();
        throw new ConfigError(`SOH_AUDIT_MAX_BYTES (${options.maxBytes}) leaves no room in ${options.file}, which holds ${pages * pageSize} bytes already: raise it`);
      }
      this.db.pragma(`max_page_count = ${Math.floor(options.maxBytes / pageSize)}`);
    }
    this.insert = this.db.prepare(
      `INSERT INTO records (seq, kind, trace_id, subject_ref, purpose, requester_org, requester_sub, time, body)
       VALUES (@seq, @kind, @trace_id, @subject_ref, @purpose, @requester_org, @requester_sub, @time, @body)`,
    );
    this.writeHead = this.db.prepare(
      `INSERT INTO head (id, seq, hash, kid, signature) VALUES (1, @seq, @hash, @kid, @signature)
       ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, kid = excluded.kid, signature = excluded.signature`,
    );
    this.appendInOneCommit = this.db.transaction((records: readonly AuditRecord[]) => {
      let previous = this.last;
      for (const record of records) {
        const chained = chain(record as unknown as Record<string, unknown>, previous) as ChainedRecord & AuditRecord;
        this.insert.run(indexColumns(chained));
        previous = chained;
      }
      this.writeHead.run(signHead(previous.seq, previous.hash, this.options.key));
      this.last = previous;
    });
  }

  /** The chain's end as the signed head names it; closes the database and throws when the records end elsewhere. */
  private signedEnd(): { seq: number; hash: string } {
    const { file, key } = this.options;
    const row = this.db.prepare('SELECT seq, body FROM records ORDER BY seq DESC LIMIT 1').get() as { seq: number; body: string } | undefined;
    const end = row ? { seq: row.seq, hash: storedHash(row.body) } : { seq: 0, hash: ZERO_HASH };
    const head = readHead(this.db);
    // After a key rotation the head was signed by the key before, which the component still holds.
    const held = this.options.heldKeys ?? new Map([[key.kid, createPublicKey(key.privateKey)]]);
    const signedBy = head ? held.get(head.kid) : undefined;
    const reason = head && !signedBy
      ? `its head is signed by key ${head.kid}, which this component does not hold (${[...held.keys()].join(', ')})`
      : headBreak(head, end, signedBy ?? null)?.reason;
    if (!reason) return end;
    this.db.close();
    throw new AuditHeadError(file, reason);
  }

  /** Appends all records in one commit, or none of them. */
  commit(records: readonly AuditRecord[]): void {
    // Inside a transaction left open (a ROLLBACK that failed), better-sqlite3 would make this one a
    // savepoint that is never committed, yet fdatasynced and acknowledged as durable.
    if (this.db.inTransaction) throw new Error('an audit transaction was left open');
    const start = this.last;
    try {
      this.appendInOneCommit(records);
    } catch (error) {
      // The transaction rolled back: the chain goes on from where it was.
      this.last = start;
      throw error;
    }
  }

  close(): void {
    this.db.close();
  }
}

/** A log that does not end where its signed head says, or whose head this key did not sign: the component must not serve and sign over it. */
export class AuditHeadError extends Error {
  override name = 'AuditHeadError';
  constructor(file: string, reason: string) {
    super(`audit log ${file} cannot be continued: ${reason}; writing on would sign over it (soh audit verify checks the whole chain)`);
  }
}

/** The hash a stored record names; '' for a body that is no record, which matches no head. */
function storedHash(body: string): string {
  try {
    const hash: unknown = (JSON.parse(body) as { hash?: unknown } | null)?.hash;
    return typeof hash === 'string' ? hash : '';
  } catch {
    return '';
  }
}

export function readHead(db: Database.Database): SignedHead | null {
  return (db.prepare('SELECT seq, hash, kid, signature FROM head WHERE id = 1').get() as SignedHead | undefined) ?? null;
}

const ACCESS_LOG_INDEXES = `
  CREATE INDEX IF NOT EXISTS records_subject ON records (subject_ref) WHERE subject_ref IS NOT NULL;
  CREATE INDEX IF NOT EXISTS records_purpose ON records (purpose, time) WHERE kind = 'access';
  CREATE INDEX IF NOT EXISTS records_requester ON records (requester_sub, time) WHERE kind = 'access';
`;

function createTables(db: Database.Database, search: AuditSearch): void {
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
    CREATE TABLE IF NOT EXISTS head (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      seq INTEGER NOT NULL,
      hash TEXT NOT NULL,
      kid TEXT NOT NULL,
      signature TEXT NOT NULL
    );
  `);
  // A log written before its component needed fewer indexes drops the others: records stay as they are.
  db.exec(search === 'access-log' ? ACCESS_LOG_INDEXES : 'DROP INDEX IF EXISTS records_subject; DROP INDEX IF EXISTS records_purpose; DROP INDEX IF EXISTS records_requester;');
}

function indexColumns(record: ChainedRecord & AuditRecord) {
  return { ...searchColumns(record), body: JSON.stringify(record) };
}

/** Whether a stored body is exactly the text the writer wrote for the record it parses to. */
export function writtenAsIs(body: string, record: object): boolean {
  return JSON.stringify(record) === body;
}

/**
 * The columns a log is searched by, derived from the hashed record: the chain covers only `body`,
 * so `soh audit verify` derives them again and compares (an edited column could hide a record
 * from a search while the chain still verified).
 */
export function searchColumns(record: ChainedRecord & AuditRecord) {
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
  };
}
