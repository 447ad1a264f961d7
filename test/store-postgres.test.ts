import { randomBytes } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
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

/** `promise`, or a rejection once `ms` have passed without it settling. */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** A way to the database that can go silent, as a server lost in a failover does: connections stay open, no answer comes. */
async function silenceableProxy() {
  let silent = false;
  const sockets = new Set<Socket>();
  const target = new URL(databaseUrl);
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from);
      from.on('data', (chunk) => silent || to.write(chunk));
      from.on('error', () => {});
      from.on('close', () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: String(url),
    silence: () => (silent = true),
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

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

  it('connects beside an import holding row locks without taking table locks that would hold up lookups', async () => {
    const running = await open('import-running');
    const importer = new pg.Client({ connectionString: databaseUrl });
    await importer.connect();
    const imported = ban('PN-IMPORTING', A);
    let connecting: Promise<PostgresStore> | undefined;
    try {
      await importer.query('BEGIN');
      await importer.query('INSERT INTO soh_node_import_running.subjects (bsn, listed) VALUES ($1, false)', [A]);
      await importer.query('INSERT INTO soh_node_import_running.bans (id, bsn, body) VALUES ($1, $2, $3)', [imported.id, A, stored(imported)]);
      // A restart of the node (or a second import) opening the store meanwhile; had it asked for a
      // table lock, that request would be queued by now, and every lookup behind it.
      connecting = open('import-running');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await within(500, running.lookup([A]))).toEqual([null]);
      expect(await within(500, connecting.then((restarted) => restarted.lookup([A])))).toEqual([null]);
      await importer.query('COMMIT');
      expect(await running.lookup([A])).toEqual([{ contact: null, bans: [stored(imported)] }]);
    } finally {
      await importer.end();
      await connecting;
    }
  });

  it('gives up a lookup stuck behind a lock at its bound, while a load waiting on that lock waits its turn', async () => {
    const locked = await open('locked');
    const other = new pg.Client({ connectionString: databaseUrl });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('LOCK TABLE soh_node_locked.subjects IN ACCESS EXCLUSIVE MODE');
      const loading = locked.load([{ type: 'person', bsn: A }]);
      await expect(within(3_000, locked.lookup([A]))).rejects.toThrow(/statement timeout/);
      // The load has now waited longer than a lookup may.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await other.query('COMMIT');
      await expect(loading).resolves.toBe(1);
    } finally {
      await other.end();
    }
  });

  it('gives up a lookup on a server that no longer answers', async () => {
    const proxy = await silenceableProxy();
    try {
      const store = await PostgresStore.connect(proxy.url, 'failover');
      stores.push(store);
      expect(await store.lookup([A])).toEqual([null]);
      proxy.silence();
      await expect(within(4_500, store.lookup([A]))).rejects.toThrow(/Query read timeout/);
    } finally {
      proxy.close();
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
