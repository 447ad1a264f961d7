import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/**
 * The audit log's checkpoint thread. Left to itself, SQLite copies the WAL back into the database
 * inside the commit that crosses 1,000 frames, and with random-key indexes that copy and its fsync
 * took 10–12 ms on a node's log: every few hundred commits, every request waiting on that log
 * waited that long too, and the commit runs on the event loop. Here a second connection copies
 * committed frames in the background every few milliseconds (PASSIVE: it never blocks the writer
 * or a reader), syncing the WAL before and the database after, as SQLite does for every
 * checkpoint; the writer's own checkpoint is only a backstop, far beyond what this leaves in the
 * WAL. While nothing is committed it looks less and less often, so that an idle log costs next to
 * nothing.
 */
const { file, intervalMs, idleIntervalMs } = workerData as { file: string; intervalMs: number; idleIntervalMs: number };
const db = new Database(file, { fileMustExist: true });
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');

let framesSeen = -1;
let delayMs = intervalMs;
let timer = setTimeout(pass, delayMs);

function pass(): void {
  try {
    // `log` is the number of frames in the WAL: unchanged since the last pass means no commit came.
    const { log } = checkpoint.get() as { log: number };
    delayMs = log === framesSeen ? Math.min(delayMs * 2, idleIntervalMs) : intervalMs;
    framesSeen = log;
  } catch {
    // Frames not copied stay in the WAL, as durable as before; the next pass or the writer copies them.
  }
  timer = setTimeout(pass, delayMs);
}

parentPort!.on('message', (message: 'close') => {
  if (message !== 'close') return;
  clearTimeout(timer);
  db.close();
  process.exit(0);
});
