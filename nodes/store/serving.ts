import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/**
 * Who may use a node's embedded store files. A running node keeps serving the file it opened, so
 * a store replaced under it (`soh seed`) would go unseen until it restarts, and records imported
 * into it would be lost with the file. Each node process, and `soh import`, holds a shared lock
 * on `serving.lock` beside its store for as long as it runs, and `soh seed` holds an exclusive
 * one while it replaces the stores: neither starts while the other holds its lock. They are SQLite's own file locks, which the operating system drops when a process ends,
 * however it ends: no lock is ever left stale, and no pid can be mistaken for another process.
 */
const LOCK_FILE = 'serving.lock';

export class StoreInUseError extends Error {
  override name = 'StoreInUseError';
}

/** The embedded store of one node under a data directory. */
export function nodeHome(dataDir: string, nodeId: string): string {
  return join(dataDir, 'nodes', nodeId);
}

/** Present while a seed runs, and after one that did not finish: its stores are half-written. */
export function unfinishedSeedMarker(dataDir: string): string {
  return join(dataDir, 'seed.unfinished');
}

/**
 * Holds a node's embedded store as served by this process; the returned function lets it go.
 * Refused while `soh seed` replaces the stores, and after a seed that did not finish: a store it
 * left half-written would answer a confident NO_HIT for every person it had not yet written.
 */
export function holdServing(dataDir: string, nodeId: string, then = 'start the node'): () => void {
  const home = nodeHome(dataDir, nodeId);
  const letGo = hold(home, (db) => {
    // Reading starts a transaction that keeps a shared lock until it ends.
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM held').get();
  }, `the store of node ${nodeId} under ${home} is being replaced (soh seed): ${then} when that has finished`);
  if (existsSync(unfinishedSeedMarker(dataDir))) {
    letGo();
    throw new StoreInUseError(`an earlier seed under ${dataDir} did not finish, so the store of node ${nodeId} is half-written and the next soh up or soh seed replaces every store: run soh seed first, then ${then}`);
  }
  return letGo;
}

/** Holds the store under `home` so that no node serves it while `action` replaces it; the returned function lets it go. */
export function holdForReplacing(nodeId: string, home: string, action: string): () => void {
  return hold(home, (db) => db.exec('BEGIN EXCLUSIVE'), `node ${nodeId} is running on the store under ${home}, or an import into it is under way: stop it or let it finish before ${action}, or what it serves or loads is lost with the old store`);
}

function hold(home: string, lock: (db: Database.Database) => void, inUse: string): () => void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  // timeout 0: a lock another process holds is an answer, not something to wait for.
  const db = new Database(join(home, LOCK_FILE), { timeout: 0 });
  try {
    db.exec('CREATE TABLE IF NOT EXISTS held (id INTEGER)');
    lock(db);
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code?.startsWith('SQLITE_BUSY') || (error as { code?: string }).code?.startsWith('SQLITE_LOCKED')) throw new StoreInUseError(inUse);
    throw error;
  }
  return () => {
    db.exec('COMMIT');
    db.close();
  };
}
