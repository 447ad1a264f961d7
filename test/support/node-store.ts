import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { NodeId } from '../../lib/partners.ts';

export interface NodeStoreRows {
  subjects: { bsn: string; contact: string | null }[];
  bans: { id: string; bsn: string; body: string }[];
  own_records: { type: string; id: string; bsn: string; body: string }[];
}

/**
 * Every row of one node's embedded store in key order, read-only (null when the node has no store
 * yet): the data itself, independent of SQLite's page layout.
 */
export function readNodeStore(dataDir: string, node: NodeId): NodeStoreRows | null {
  const file = join(dataDir, 'nodes', node, 'store.db');
  if (!existsSync(file)) return null;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return {
      subjects: db.prepare('SELECT bsn, contact FROM subjects ORDER BY bsn').all() as NodeStoreRows['subjects'],
      bans: db.prepare('SELECT id, bsn, body FROM bans ORDER BY id').all() as NodeStoreRows['bans'],
      own_records: db.prepare('SELECT type, id, bsn, body FROM own_records ORDER BY type, id').all() as NodeStoreRows['own_records'],
    };
  } finally {
    db.close();
  }
}
