import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../lib/audit/log.ts';
import { createKeyFile } from '../lib/keys.ts';
import { nodeAccessRecord } from './support/audit-records.ts';
import { eventually } from './support/otlp-sink.ts';

// A log's WAL is copied back into its database by a background thread, so that no commit (and no
// answer waiting on one) pays for a checkpoint; what is committed stays durable throughout.

const dir = mkdtempSync(join(tmpdir(), 'soh-checkpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


/** The records the database file holds by itself, without its WAL (as after copying only that file). */
function recordsInDatabaseFile(file: string): number {
  const copy = join(dir, `copy-${Date.now()}-${Math.random()}.db`);
  copyFileSync(file, copy);
  const db = new Database(copy, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('audit log checkpoints', () => {
  it('copies committed records into the database file in the background, long before the WAL is full', async () => {
    const file = join(dir, 'background.db');
    const log = new AuditLog(file, createKeyFile(join(dir, 'keys'), 'test'), { search: 'traces' });
    try {
      // Ten commits are a few dozen WAL frames: far below the 1,000 at which the writer itself would copy them.
      for (let index = 1; index <= 10; index++) await log.append(nodeAccessRecord(index));
      expect(existsSync(`${file}-wal`)).toBe(true);
      await eventually(() => (recordsInDatabaseFile(file) === 10 ? true : undefined), 'ten records in the database file');
      // The log goes on taking records after a checkpoint, in the same chain.
      await log.append(nodeAccessRecord(11));
      await eventually(() => (recordsInDatabaseFile(file) === 11 ? true : undefined), 'the eleventh record in the database file');
    } finally {
      await log.close();
    }
    const db = new Database(file, { readonly: true });
    const seqs = db.prepare('SELECT seq FROM records ORDER BY seq').all() as { seq: number }[];
    db.close();
    expect(seqs.map((row) => row.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('closes both of its threads', async () => {
    const file = join(dir, 'closing.db');
    const log = new AuditLog(file, createKeyFile(join(dir, 'keys-closing'), 'test'), { search: 'traces' });
    await log.append(nodeAccessRecord(1));
    await log.close();
    // The last connection to close copies the WAL back and removes it: neither thread still holds the file.
    expect(existsSync(`${file}-wal`)).toBe(false);
    expect(recordsInDatabaseFile(file)).toBe(1);
  });
});
