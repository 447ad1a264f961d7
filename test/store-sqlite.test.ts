import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../nodes/store/sqlite.ts';
import { recordMoves } from './support/store-moves.ts';

// The embedded store answers the node's lookups the way PostgresStore does (test/store-postgres.test.ts).
const dir = mkdtempSync(join(tmpdir(), 'soh-sqlite-store-'));
const store = new SqliteStore(join(dir, 'store.db'));
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const [KNOWN, BANNED, UNKNOWN] = ['123456782', '111222333', '240000017'];
const contact = { organisation: 'Politie', unit: 'Eenheid Rotterdam', phone: '0900-8844' };
const ban = {
  type: 'ban' as const,
  id: 'PN-1',
  bsn: BANNED,
  kind: 'CONTACT' as const,
  legalBasis: 'art. 38v Sr',
  imposedBy: 'Rechtbank Rotterdam',
  status: 'ACTIVE' as const,
  validFrom: '2025-01-01T00:00:00Z',
  validUntil: null,
  protectedBsns: [KNOWN],
  electronicMonitoring: false,
  victimDevice: false,
};

describe('SqliteStore', () => {
  it('answers one entry per BSN, in order, with contacts and bans', async () => {
    await store.load([{ type: 'person', bsn: KNOWN, contact }, ban]);
    const { type: _type, ...stored } = ban;
    expect(await store.lookup([UNKNOWN, BANNED, KNOWN])).toEqual([null, { contact: null, bans: [stored] }, { contact, bans: [] }]);
  });

  it('reads no bans when the caller does not ask for them, and still knows the subject', async () => {
    expect(await store.lookup([BANNED, UNKNOWN], { withBans: false })).toEqual([{ contact: null, bans: [] }, null]);
  });

  it('commits a load with synchronous = FULL and serves lookups with NORMAL again', async () => {
    const db = (store as unknown as { db: Database.Database }).db;
    const synchronous = () => db.pragma('synchronous', { simple: true });
    const during: unknown[] = [];
    function* records() {
      during.push(synchronous());
      yield { type: 'person' as const, bsn: KNOWN, contact };
    }
    await store.load(records());
    // 2 is FULL, 1 NORMAL.
    expect(during).toEqual([2]);
    expect(synchronous()).toBe(1);
  });
});

describe('SqliteStore, records moved to another BSN', () => {
  recordMoves(() => store);
});

describe('SqliteStore beside an import in another process', () => {
  it('answers one lookup from one moment: a ban moving between two asked persons is under one of them', async () => {
    const file = join(dir, 'shared.db');
    const writer = new SqliteStore(file);
    const reader = new SqliteStore(file);
    try {
      await writer.load([{ ...ban, id: 'PN-MOVING', bsn: KNOWN }]);
      // The import's commit lands between the reader's first and second person (the statement is
      // the store's own: `soh import` is another connection to the same file).
      const statement = (reader as unknown as { subjectByBsn: { get(bsn: string): unknown } }).subjectByBsn;
      const get = statement.get.bind(statement);
      let calls = 0;
      statement.get = (bsn: string) => {
        const row = get(bsn);
        if (calls++ === 0) void writer.load([{ ...ban, id: 'PN-MOVING', bsn: BANNED }]);
        return row;
      };
      const [banned, known] = await reader.lookup([BANNED, KNOWN]);
      expect([...(banned?.bans ?? []), ...(known?.bans ?? [])].map((b) => b.id)).toEqual(['PN-MOVING']);
      expect(await writer.lookup([BANNED, KNOWN])).toEqual([expect.objectContaining({ bans: [expect.objectContaining({ id: 'PN-MOVING' })] }), null]);
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  it('keeps every subject of a store made before records could move known', async () => {
    const file = join(dir, 'older.db');
    const older = new Database(file);
    older.exec('CREATE TABLE subjects (bsn TEXT PRIMARY KEY, contact TEXT) WITHOUT ROWID');
    older.prepare('INSERT INTO subjects (bsn, contact) VALUES (?, NULL)').run(UNKNOWN);
    older.close();
    const opened = new SqliteStore(file);
    try {
      await opened.load([{ ...ban, id: 'PN-OLD', bsn: UNKNOWN }]);
      await opened.load([{ ...ban, id: 'PN-OLD', bsn: KNOWN }]);
      expect(await opened.lookup([UNKNOWN])).toEqual([{ contact: null, bans: [] }]);
    } finally {
      await opened.close();
    }
  });
});

/** Another process (`soh import`) holding the store's write lock for `ms`; resolves once it holds it. */
async function holdWriteLock(file: string, ms: number): Promise<{ released: Promise<unknown> }> {
  const child = spawn(process.execPath, [
    '-e',
    `const db = new (require(process.argv[1]))(process.argv[2]);
     db.exec('BEGIN IMMEDIATE');
     console.log('locked');
     setTimeout(() => db.exec('COMMIT'), Number(process.argv[3]));`,
    createRequire(import.meta.url).resolve('better-sqlite3'), file, String(ms),
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout, 'data');
  return { released: once(child, 'exit') };
}

describe('SqliteStore while an import in another process holds the write lock past the 5 s busy timeout', () => {
  it('opens the store, and a load waits its turn', async () => {
    const file = join(dir, 'busy.db');
    await new SqliteStore(file).close();
    const importer = await holdWriteLock(file, 6_000);
    try {
      const opened = new SqliteStore(file);
      try {
        const started = Date.now();
        expect(await opened.load([{ type: 'person', bsn: KNOWN, contact }])).toBe(1);
        expect(Date.now() - started).toBeGreaterThan(5_000);
        expect(await opened.lookup([KNOWN])).toEqual([{ contact, bans: [] }]);
      } finally {
        await opened.close();
      }
    } finally {
      await importer.released;
    }
  });
});
