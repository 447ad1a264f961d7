import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { StoredKey } from '../keys.ts';
import { workerSource } from '../project.ts';
import type { SignedHead } from './chain.ts';
import type { AuditRecord } from './records.ts';
import { type AuditSearch, AuditWriter } from './writer.ts';

const WRITER_THREAD = workerSource('lib/audit/writer-thread.ts');
const WRITER_YOUNG_GENERATION_MB = 4;
const CHECKPOINTER_THREAD = workerSource('lib/audit/checkpointer-thread.ts');
const CHECKPOINT_INTERVAL_MS = 50;
// Idle, the checkpointer looks at most this seldom: short enough that a busy node (about 1,500
// frames a second) starts again before its WAL reaches the 1,000 frames of the writer's backstop.
const CHECKPOINT_IDLE_INTERVAL_MS = 500;

/**
 * A process started with semi-space flags (GATEWAY_NODE_FLAGS) would give every worker the same
 * young generation, whatever its resourceLimits say: V8 lets the flags win. It reads them only
 * when an isolate is created, so once the main thread's heap exists they are cleared, and each
 * writer thread gets the young generation its limits name (measured: 48 MiB of young generation
 * for a writer that keeps 5 MiB alive, about a fifth of the gateway's RSS).
 */
function leaveYoungGenerationToResourceLimits(): void {
  setFlagsFromString('--min-semi-space-size=0');
  setFlagsFromString('--max-semi-space-size=0');
}

/**
 * One component's append-only, hash-chained audit log (see AuditWriter). Appends made in the same
 * tick travel to the writer thread as one batch; each append's promise settles only once the
 * commit holding it is durable, so no answer leaves before its record. A failed write rejects
 * (the caller fails closed) and makes `healthy` false until a write succeeds again. A second
 * thread checkpoints the WAL in the background (checkpointer-thread.ts).
 */
export class AuditLog {
  private worker: Worker | null = null;
  private readonly checkpointer: Worker;
  private nextId = 1;
  private queued: AuditRecord[] = [];
  private queuedWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private readonly inFlight = new Map<number, { resolve: () => void; reject: (error: Error) => void }[]>();
  private lastWriteFailed = false;

  constructor(
    readonly file: string,
    private readonly key: StoredKey,
    private readonly options: { maxBytes?: number; search?: AuditSearch } = {},
  ) {
    // Create the file and tables now, so that start-up fails here if the log cannot be opened.
    new AuditWriter({ file, key, ...options }).close();
    // Start the writer thread now: loading it takes longer than a request may wait.
    this.thread();
    this.checkpointer = new Worker(CHECKPOINTER_THREAD, { eval: true, workerData: { file, intervalMs: CHECKPOINT_INTERVAL_MS, idleIntervalMs: CHECKPOINT_IDLE_INTERVAL_MS }, resourceLimits: { maxYoungGenerationSizeMb: 1 } });
    // Background work: it never keeps the process alive, and a checkpoint cut short is safe.
    this.checkpointer.unref();
  }

  get healthy(): boolean {
    return !this.lastWriteFailed;
  }

  append(record: AuditRecord): Promise<void> {
    return this.appendAll([record]);
  }

  appendAll(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(() => this.send());
      this.queued.push(...records);
      this.queuedWaiters.push({ resolve, reject });
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    leaveYoungGenerationToResourceLimits();
    const worker = new Worker(WRITER_THREAD, {
      eval: true,
      workerData: { file: this.file, key: { kid: this.key.kid, privateKey: this.key.privateKey }, maxBytes: this.options.maxBytes, search: this.options.search },
      // The writer allocates a few kilobytes per commit: a small young generation is enough.
      resourceLimits: { maxYoungGenerationSizeMb: WRITER_YOUNG_GENERATION_MB },
    });
    worker.unref();
    worker.on('message', (reply: { ids: number[]; ok: boolean }) => {
      this.lastWriteFailed = !reply.ok;
      for (const id of reply.ids) {
        const waiters = this.inFlight.get(id) ?? [];
        this.inFlight.delete(id);
        for (const waiter of waiters) {
          if (reply.ok) waiter.resolve();
          else waiter.reject(new AuditWriteError());
        }
      }
      if (this.inFlight.size === 0) worker.unref();
    });
    worker.on('error', () => this.abandon(worker));
    worker.on('exit', () => this.abandon(worker));
    this.worker = worker;
    return worker;
  }

  /** The thread died: everything it held fails closed; the next append starts a new thread. */
  private abandon(worker: Worker): void {
    if (this.worker !== worker) return;
    this.worker = null;
    if (this.inFlight.size === 0) return;
    this.lastWriteFailed = true;
    for (const waiters of this.inFlight.values()) for (const waiter of waiters) waiter.reject(new AuditWriteError());
    this.inFlight.clear();
  }

  private send(): void {
    const records = this.queued;
    const waiters = this.queuedWaiters;
    this.queued = [];
    this.queuedWaiters = [];
    const id = this.nextId++;
    this.inFlight.set(id, waiters);
    const worker = this.thread();
    if (this.inFlight.size === 1) worker.ref();
    worker.postMessage({ id, records });
  }

  async close(): Promise<void> {
    await Promise.all([this.checkpointer, this.worker].map((worker) => worker && closeThread(worker)));
  }
}

/** Asks a thread to finish its work and exit; waits until it has. */
function closeThread(worker: Worker): Promise<void> {
  if (worker.threadId === -1) return Promise.resolve();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  // Idle threads are unref'd; closing must keep the process alive until the last commit is done.
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

export function readHead(db: Database.Database): SignedHead | null {
  return (db.prepare('SELECT seq, hash, kid, signature FROM head WHERE id = 1').get() as SignedHead | undefined) ?? null;
}
