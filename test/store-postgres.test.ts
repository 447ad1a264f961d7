import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { completeBsn, isValidBsn } from '../lib/bsn.ts';
import type { Ban } from '../lib/records.ts';
import type { ImportRecord } from '../nodes/runtime/import-records.ts';
import { PostgresStore } from '../nodes/store/postgres.ts';
import { banLine } from './support/fixtures.ts';
import { recordMoves } from './support/store-moves.ts';

const ADMIN_URL = process.env.SOH_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const database = `soh_test_${randomBytes(6).toString('hex')}`;
const databaseUrl = ADMIN_URL.replace(/\/[^/]*$/, `/${database}`);

function bsnFor(n: number): string {
  for (let k = n; ; k++) {
    const bsn = completeBsn(String(10_000_000 + k).padStart(8, '0'));
    if (bsn) return bsn;
  }
}
const [A, B, C, D] = ['123456782', '111222333', bsnFor(1), bsnFor(50)];

const ban = (id: string, bsn: string, overrides: Partial<Ban> = {}) => banLine(id, bsn, { imposedBy: 'Rechtbank Amsterdam', ...overrides });
const stored = ({ type: _type, ...rest }: Ban & { type: 'ban' }): Ban => rest;

describe('PostgresStore', () => {
  const stores: PostgresStore[] = [];
  const open = async (nodeId: string) => {
    const store = await PostgresStore.connect(databaseUrl, nodeId);
    stores.push(store);
    return store;
  };
  let politie: PostgresStore;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    politie = await open('politie');
  });

  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  it('uses valid BSNs', () => {
    for (const bsn of [A, B, C, D]) expect(isValidBsn(bsn)).toBe(true);
  });

  it('returns null for an unknown BSN', async () => {
    expect(await politie.lookup([A])).toEqual([null]);
    expect(await politie.lookup([])).toEqual([]);
  });

  it('returns the contact of a loaded person', async () => {
    const contact = { organisation: 'Politie', unit: 'Eenheid Amsterdam', phone: '0900-8844' };
    expect(await politie.load([{ type: 'person', bsn: A, contact }])).toBe(1);
    expect(await politie.lookup([A])).toEqual([{ contact, bans: [] }]);
  });

  it('makes the subject of a ban known, with no contact, and lists the ban', async () => {
    const b = ban('ban-b-1', B);
    await politie.load([b]);
    expect(await politie.lookup([B])).toEqual([{ contact: null, bans: [stored(b)] }]);
  });

  it('reads no bans when the caller does not ask for them, and still knows the subject', async () => {
    expect((await politie.lookup([B]))[0]?.bans).toHaveLength(1);
    const [banned, known, unknown] = await politie.lookup([B, A, D], { withBans: false });
    expect(banned).toEqual({ contact: null, bans: [] });
    expect(known).toMatchObject({ contact: { organisation: 'Politie' }, bans: [] });
    expect(unknown).toBeNull();
  });

  it('does not overwrite a contact when a ban arrives for a known person', async () => {
    const [before] = await politie.lookup([A]);
    await politie.load([ban('ban-a-2', A), ban('ban-a-1', A)]);
    const [after] = await politie.lookup([A]);
    expect(after?.contact).toEqual(before?.contact);
    expect(after?.bans.map((b) => b.id)).toEqual(['ban-a-1', 'ban-a-2']);
  });

  it('upserts a ban by id', async () => {
    await politie.load([ban('ban-b-1', B, { status: 'REVOKED', statusChangedAt: '2025-06-01T00:00:00Z' })]);
    const [record] = await politie.lookup([B]);
    expect(record?.bans).toHaveLength(1);
    expect(record?.bans[0]).toMatchObject({ id: 'ban-b-1', status: 'REVOKED', statusChangedAt: '2025-06-01T00:00:00Z' });
  });

  it('lets the last line for a key win, also within one load', async () => {
    await politie.load([
      { type: 'person', bsn: C, contact: { organisation: 'first' } },
      ban('ban-c-1', C, { kind: 'LOCATION' }),
      { type: 'person', bsn: C, contact: { organisation: 'second' } },
      ban('ban-c-1', C, { kind: 'HOUSE' }),
    ]);
    const [record] = await politie.lookup([C]);
    expect(record?.contact).toEqual({ organisation: 'second' });
    expect(record?.bans.map((b) => b.kind)).toEqual(['HOUSE']);
  });

  it('answers a mixed batch in input order', async () => {
    const result = await politie.lookup([D, B, A, D, C, B]);
    expect(result.map((r) => (r === null ? null : r.contact?.organisation ?? 'known'))).toEqual([
      null, 'known', 'Politie', null, 'second', 'known',
    ]);
  });

  it('stores own record types and makes their subject known', async () => {
    const report = { type: 'incident', id: 'inc-1', bsn: D, summary: 'melding' } as ImportRecord;
    await politie.load([report, { ...report, summary: 'bijgewerkt' } as ImportRecord]);
    expect(await politie.lookup([D])).toEqual([{ contact: null, bans: [] }]);
    expect((await politie.count()).ownRecords).toBe(1);
  });

  it('loads nothing when a load fails midway, even after full batches were written', async () => {
    const before = await politie.count();
    function* failing(): Generator<ImportRecord> {
      for (let i = 0; i < 2500; i++) yield { type: 'person', bsn: bsnFor(1000 + i * 3) };
      yield ban('ban-doomed', A);
      throw new Error('line 2502: not valid JSON');
    }
    await expect(politie.load(failing())).rejects.toThrow('line 2502');
    expect(await politie.count()).toEqual(before);
    expect((await politie.lookup([A]))[0]?.bans.map((b) => b.id)).not.toContain('ban-doomed');
    // The pool is still usable after the rollback.
    expect(await politie.load([{ type: 'person', bsn: A, contact: { organisation: 'Politie' } }])).toBe(1);
  });

  it('runs one load at a time per store: a load waits while another holds the store', async () => {
    // Another load's transaction, holding the store's load lock (postgres.ts, load).
    const other = new pg.Client({ connectionString: databaseUrl });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['soh-load:"soh_node_politie"']);
      let done = false;
      const waiting = politie.load([{ type: 'person', bsn: D }]).then((count) => ((done = true), count));
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(done).toBe(false);
      await other.query('COMMIT');
      await expect(waiting).resolves.toBe(1);
    } finally {
      await other.end();
    }
  });

  it('loads many records across batches', async () => {
    const records: ImportRecord[] = [];
    for (let i = 0; i < 3000; i++) {
      const bsn = bsnFor(100_000 + i * 3);
      records.push({ type: 'person', bsn, contact: { organisation: `org ${i}` } }, ban(`bulk-${i}`, bsn));
    }
    const store = await open('bulk-node');
    expect(await store.load(records)).toBe(6000);
    expect(await store.count()).toEqual({ persons: 3000, bans: 3000, ownRecords: 0 });
    const [first, last] = await store.lookup([bsnFor(100_000), bsnFor(100_000 + 2999 * 3)]);
    expect(first?.contact).toEqual({ organisation: 'org 0' });
    expect(last?.bans.map((b) => b.id)).toEqual(['bulk-2999']);
  });

  it('keeps node ids in one database apart', async () => {
    const om = await open('openbaar-ministerie');
    expect(await om.lookup([A, B])).toEqual([null, null]);
    await om.load([{ type: 'person', bsn: D, contact: { organisation: 'OM' } }]);
    expect((await politie.lookup([D]))[0]?.contact).toBeNull();
    expect((await om.lookup([D]))[0]?.contact).toEqual({ organisation: 'OM' });
    expect((await om.count()).persons).toBe(1);
    // Reconnecting finds the existing schema and data.
    const again = await open('openbaar-ministerie');
    expect((await again.lookup([D]))[0]?.contact).toEqual({ organisation: 'OM' });
  });

  it('rejects a node id that is not a safe schema name', async () => {
    await expect(PostgresStore.connect(databaseUrl, 'politie"; DROP TABLE x; --')).rejects.toThrow(/schema name/);
  });

  describe('records moved to another BSN', () => {
    let moves: PostgresStore;
    beforeAll(async () => {
      moves = await open('moves');
    });
    recordMoves(() => moves);

    it('keeps every subject of a store made before records could move known', async () => {
      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      await admin.query('CREATE SCHEMA soh_node_older; CREATE TABLE soh_node_older.subjects (bsn text PRIMARY KEY, contact jsonb)');
      await admin.query('INSERT INTO soh_node_older.subjects (bsn) VALUES ($1)', [C]);
      await admin.end();
      const older = await open('older');
      await older.load([ban('PN-OLD', C)]);
      await older.load([ban('PN-OLD', D)]);
      expect(await older.lookup([C])).toEqual([{ contact: null, bans: [] }]);
    });
  });
});
