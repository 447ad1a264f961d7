import { type Stats, closeSync, fdatasync, fstatSync, openSync, statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { StoredKey } from '../keys.ts';
import { workerSource } from '../project.ts';
import type { AuditRecord } from './records.ts';
import { type AuditSearch, AuditWriter } from './writer.ts';

const CHECKPOINTER_THREAD = workerSource('lib/audit/checkpointer-thread.ts');
const CHECKPOINT_INTERVAL_MS = 50;
// Idle, the checkpointer looks at most this seldom: a busy node writes about 1,500 frames a
// second, so the WAL it finds on waking is small.
const CHECKPOINT_IDLE_INTERVAL_MS = 500;
/** Far past any fdatasync of a working disk (about 0.1 ms here, README, Benchmark): one not back by then hangs. */
const SYNC_TIMEOUT_MS = 5_000;

/**
 * A process started with semi-space flags (GATEWAY_NODE_FLAGS) would give every worker the same
 * young generation, whatever its resourceLimits say: V8 lets the flags win. It reads them only
 * when an isolate is created, so once the main thread's heap exists they are cleared, and the
 * checkpoint thread gets the young generation its limits name.
 */
function leaveYoungGenerationToResourceLimits(): void {
  setFlagsFromString('--min-semi-space-size=0');
  setFlagsFromString('--max-semi-space-size=0');
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * One component's append-only, hash-chained audit log (see AuditWriter). Appends made in the same
 * tick are committed together at the end of the tick: SQLite writes their WAL frames into the page
 * cache, which takes CPU but never waits for the disk. Then an fdatasync of the WAL on libuv's
 * thread pool makes them durable, and only then does each append's promise settle, so no answer
 * leaves before its record. Commits made while an fdatasync runs share the next one (group commit).
 *
 * Committing here rather than in a worker thread saves the structured clone of the records and
 * the wake-ups of a thread with its own event loop; the pool thread that waits for the disk runs
 * no JavaScript (README, Benchmark: 0.93 of the gateway's CPU per request). The checkpoints that
 * copy the WAL back run in a thread of their own (checkpointer-thread.ts), with SQLite's own fsyncs.
 *
 * A failed commit rejects its appends (the caller fails closed) and makes `healthy` false until
 * a commit succeeds again, or for good once the storage quota is reached. A failed fdatasync is final: what the page cache still holds is then
 * unknown, so every later append fails closed too, until the process is restarted. So is a log
 * whose files are no longer at their path (removed, or replaced by others): its commits would go
 * on succeeding into files nobody can read, so each fdatasync round checks, before it
 * acknowledges anything, that the database and its WAL are still the files the writer holds.
 * An fdatasync that has not returned within `syncTimeoutMs` counts as failed: on a disk (or NFS
 * server) that hangs, every answer would wait for ever while the log still said it was healthy.
 */
export class AuditLog {
  private readonly writer: AuditWriter;
  /** The WAL file, held open for fdatasync; it stays the same file while the writer is open. */
  private readonly wal: number;
  private readonly checkpointer: Worker;
  /** The database and WAL files as opened: the same files must be at their paths for an append to count. */
  private readonly opened: { database: Stats; wal: Stats };
  private readonly syncTimeoutMs: number;
  private queued: AuditRecord[] = [];
  private queuedWaiters: Waiter[] = [];
  private committed: Waiter[] = [];
  private syncing: Promise<void> | null = null;
  private lastWriteFailed = false;
  /** The storage quota was reached: a commit small enough to fit may still succeed, but the log stays unready. */
  private full = false;
  private syncFailed = false;
  private closed = false;

  constructor(
    readonly file: string,
    key: StoredKey,
    {
      syncTimeoutMs = SYNC_TIMEOUT_MS,
      heldKeys = [key],
      ...options
    }: { maxBytes?: number; search?: AuditSearch; syncTimeoutMs?: number; heldKeys?: readonly StoredKey[] } = {},
  ) {
    // Opening creates the file, the tables and the WAL: start-up fails here if the log cannot be
    // opened, or does not end where its signed head says.
    this.writer = new AuditWriter({
      file,
      key: { kid: key.kid, privateKey: key.privateKey },
      heldKeys: new Map(heldKeys.map((held) => [held.kid, held.publicKey])),
      ...options,
    });
    this.syncTimeoutMs = syncTimeoutMs;
    this.wal = openSync(`${file}-wal`, 'r');
    this.opened = { database: statSync(file), wal: fstatSync(this.wal) };
    leaveYoungGenerationToResourceLimits();
    this.checkpointer = new Worker(CHECKPOINTER_THREAD, { eval: true, workerData: { file, intervalMs: CHECKPOINT_INTERVAL_MS, idleIntervalMs: CHECKPOINT_IDLE_INTERVAL_MS }, resourceLimits: { maxYoungGenerationSizeMb: 1 } });
    // Background work: it never keeps the process alive, and a checkpoint cut short is safe.
    this.checkpointer.unref();
    // A thread that fails (its database gone before it opened it, say) leaves checkpoints to the
    // writer's backstop: it must never take the component down with it.
    this.checkpointer.on('error', (error: unknown) => {
      const reason = (error as { code?: string; message?: string }).code ?? (error as { message?: string }).message;
      console.error(`audit log ${file}: the checkpoint thread stopped (${String(reason)}); the writer checkpoints on its own`);
    });
  }

  get healthy(): boolean {
    return !this.lastWriteFailed && !this.syncFailed && !this.full;
  }

  append(record: AuditRecord): Promise<void> {
    return this.appendAll([record]);
  }

  appendAll(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    if (this.syncFailed || this.closed) return Promise.reject(new AuditWriteError());
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(() => this.commit());
      this.queued.push(...records);
      this.queuedWaiters.push({ resolve, reject });
    });
  }

  private commit(): void {
    if (this.queued.length === 0) return;
    const records = this.queued;
    const waiters = this.queuedWaiters;
    this.queued = [];
    this.queuedWaiters = [];
    // Queued before an fdatasync failed, committed after: their answers say nothing was released
    // (AUDIT_UNAVAILABLE), so no record may say otherwise.
    if (this.syncFailed) {
      for (const waiter of waiters) waiter.reject(new AuditWriteError());
      return;
    }
    try {
      this.writer.commit(records);
    } catch (error) {
      this.lastWriteFailed = true;
      // An append-only log under its quota never gets room back: the next small commit may fit in
      // what is left of a page, and would make a load balancer send traffic that mostly fails.
      if ((error as { code?: string }).code === 'SQLITE_FULL') this.full = true;
      for (const waiter of waiters) waiter.reject(new AuditWriteError());
      return;
    }
    this.lastWriteFailed = false;
    this.committed.push(...waiters);
    this.syncing ??= this.sync();
  }

  /** fdatasyncs the WAL until no committed append is left waiting; each round covers every commit made before it began. */
  private async sync(): Promise<void> {
    while (this.committed.length > 0) {
      const waiters = this.committed;
      this.committed = [];
      // Once one has failed, another would change nothing, and on a hung disk would hold a second pool thread.
      if (!this.syncFailed) this.syncFailed = !(await this.fdatasyncInTime()) || !this.stillAtItsPath();
      for (const waiter of waiters) {
        if (this.syncFailed) waiter.reject(new AuditWriteError());
        else waiter.resolve();
      }
    }
    this.syncing = null;
  }

  /** Whether an fdatasync of the WAL returned without error within the bound; one that returns later settles nothing. */
  private fdatasyncInTime(): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        console.error(`audit log ${this.file}: an fdatasync of its WAL has not returned after ${this.syncTimeoutMs} ms; every request fails closed until the component restarts`);
        resolve(false);
      }, this.syncTimeoutMs);
      fdatasync(this.wal, (error) => {
        clearTimeout(timer);
        resolve(!error);
      });
    });
  }

  /** Two stats of dentries the commits keep in cache: a few µs per fdatasync round. */
  private stillAtItsPath(): boolean {
    const same = (path: string, opened: Stats) => {
      const now = statSync(path, { throwIfNoEntry: false });
      return now !== undefined && now.ino === opened.ino && now.dev === opened.dev;
    };
    if (same(this.file, this.opened.database) && same(`${this.file}-wal`, this.opened.wal)) return true;
    if (!this.syncFailed) console.error(`audit log ${this.file} was removed or replaced: every request fails closed until the component restarts`);
    return false;
  }

  /** Commits what is queued, waits until it is durable, then closes the log. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.queued.length) this.commit();
    await this.syncing;
    await closeThread(this.checkpointer);
    this.writer.close();
    closeSync(this.wal);
  }
}

/** Asks a thread to finish its work and exit; waits until it has. */
function closeThread(worker: Worker): Promise<void> {
  if (worker.threadId === -1) return Promise.resolve();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  // An idle thread is unref'd; closing must keep the process alive until it is done.
  worker.ref();
  worker.postMessage('close');
  return exited;
}

export class AuditWriteError extends Error {
  override name = 'AuditWriteError';
  constructor() {
    super('the audit record could not be written');
  }
}

/** Read side of a log file, for verification and the access-log query (never writes). */
export function openAuditReader(file: string): Database.Database {
  return new Database(file, { readonly: true, fileMustExist: true });
}

export { readHead } from './writer.ts';
