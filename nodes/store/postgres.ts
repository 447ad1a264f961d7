import pg from 'pg';
import type { Ban } from '../../lib/records.ts';
import type { OwnRecord } from '../runtime/definition.ts';
import type { ImportRecord } from '../runtime/import-records.ts';
import type { NodeStore, PersonRecord } from './store.ts';

const SCHEMA_NAME = /^[a-z][a-z0-9_]*$/;
/** Rows per INSERT: few round trips for a 100k-line import, while keeping statements modest. */
const BATCH = 1000;
/**
 * How long a lookup may take. The gateway stops waiting for a node at its request deadline (1.5 s
 * by default); a lookup stuck behind a lock or on a server that failed over silently would only
 * hold one of the pool's connections, and soon all of them.
 */
const LOOKUP_TIMEOUT_MS = 2_000;
/** What connect() creates, to be found in the catalog; `listed` is a column of subjects. */
const RELATIONS = ['subjects', 'bans', 'bans_by_bsn', 'own_records', 'own_records_by_bsn'];

/**
 * The production store. In production each organisation runs its node against its own PostgreSQL,
 * under its own backups, access control and retention, so no data leaves the organisation's
 * infrastructure. Semantics are exactly those of the embedded SqliteStore; only the engine differs.
 * Each node gets its own schema, so several nodes can share one database (demo, tests) without
 * seeing each other's data.
 */
export class PostgresStore implements NodeStore {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  static async connect(databaseUrl: string, nodeId: string): Promise<PostgresStore> {
    const schema = `soh_node_${nodeId.replace(/-/g, '_')}`;
    // The schema name is interpolated into SQL, so it must never carry anything but an identifier.
    if (!SCHEMA_NAME.test(schema) || schema.length > 63) throw new Error(`node id ${JSON.stringify(nodeId)} is not usable as a schema name`);
    const pool = new pg.Pool({
      connectionString: databaseUrl,
      max: 10,
      // Also bounds the wait for a free connection when all ten are busy.
      connectionTimeoutMillis: 5_000,
      // A server gone without closing its connections (failover) is noticed while they sit idle.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      // The server cancels a lookup stuck behind a lock; transaction() lifts this for loads.
      statement_timeout: LOOKUP_TIMEOUT_MS,
    });
    // An idle connection dropped by the server (restart, failover) must not crash the node: the pool replaces it.
    pool.on('error', (err) => console.error(`postgres store ${schema}: idle connection lost: ${err.message}`));
    const store = new PostgresStore(pool, schema);
    try {
      if (!(await store.schemaComplete())) await store.createSchema();
    } catch (err) {
      await pool.end();
      throw err;
    }
    return store;
  }

  /**
   * Whether everything createSchema() makes exists, read from the catalog: that takes no lock on the
   * tables, so a node starting beside a running import neither waits for it nor makes lookups wait.
   */
  private async schemaComplete(): Promise<boolean> {
    const { rows } = await this.pool.query<{ complete: boolean }>(
      `SELECT bool_and(to_regclass(name) IS NOT NULL) AND EXISTS (
                SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($2) AND attname = 'listed' AND NOT attisdropped) AS complete
         FROM unnest($1::text[]) AS name`,
      [RELATIONS.map((name) => `"${this.schema}".${name}`), `"${this.schema}".subjects`],
    );
    return rows[0]!.complete;
  }

  /**
   * ALTER TABLE takes an exclusive lock even when the column is there, CREATE INDEX one that waits
   * for an import's writes; lookups queue behind either. So this runs only for a new or older store,
   * and gives up after a few seconds rather than stall a running node's lookups.
   */
  private async createSchema(): Promise<void> {
    const schema = this.schema;
    await this.transaction(async (client) => {
      // Two processes starting the same node at once would otherwise race on CREATE ... IF NOT EXISTS.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [schema]);
      await client.query("SET LOCAL lock_timeout = '5s'");
      await client.query(`
        CREATE SCHEMA IF NOT EXISTS "${schema}";
        CREATE TABLE IF NOT EXISTS "${schema}".subjects (bsn text PRIMARY KEY, contact jsonb);
        -- Known for a person line (listed) or while a ban or own record names them (SqliteStore).
        -- Subjects of a store made before this column stay known, as they were.
        ALTER TABLE "${schema}".subjects ADD COLUMN IF NOT EXISTS listed boolean NOT NULL DEFAULT true;
        CREATE TABLE IF NOT EXISTS "${schema}".bans (id text PRIMARY KEY, bsn text NOT NULL, body jsonb NOT NULL);
        CREATE INDEX IF NOT EXISTS bans_by_bsn ON "${schema}".bans (bsn);
        CREATE TABLE IF NOT EXISTS "${schema}".own_records (
          type text NOT NULL, id text NOT NULL, bsn text NOT NULL, body jsonb NOT NULL,
          PRIMARY KEY (type, id));
        CREATE INDEX IF NOT EXISTS own_records_by_bsn ON "${schema}".own_records (bsn);
      `);
    });
  }

  async lookup(bsns: readonly string[], { withBans = true }: { withBans?: boolean } = {}): Promise<(PersonRecord | null)[]> {
    if (bsns.length === 0) return [];
    // COLLATE "C" orders ban ids bytewise, as SQLite does, whatever the database's locale.
    const bans = withBans
      ? `COALESCE((SELECT jsonb_agg(b.body ORDER BY b.id COLLATE "C") FROM "${this.schema}".bans b WHERE b.bsn = s.bsn), '[]'::jsonb)`
      : `'[]'::jsonb`;
    // The server cancels the statement at LOOKUP_TIMEOUT_MS (the pool's statement_timeout); a server
    // that no longer answers at all is given up a little later. pg reads query_timeout per query
    // too, though its types know it only as a client setting.
    const query: pg.QueryConfig & { query_timeout: number } = {
      text: `SELECT s.bsn, s.contact, ${bans} AS bans
               FROM "${this.schema}".subjects s
              WHERE s.bsn = ANY($1::text[])`,
      values: [[...new Set(bsns)]],
      query_timeout: LOOKUP_TIMEOUT_MS + 1_000,
    };
    const { rows } = await this.pool.query<{ bsn: string; contact: PersonRecord['contact']; bans: Ban[] }>(query);
    const byBsn = new Map(rows.map((row) => [row.bsn, { contact: row.contact ?? null, bans: row.bans }]));
    return bsns.map((bsn) => byBsn.get(bsn) ?? null);
  }

  async load(records: Iterable<ImportRecord>): Promise<number> {
    const s = `"${this.schema}"`;
    // Keyed buffers: one INSERT ... ON CONFLICT DO UPDATE may not touch the same row twice, and the
    // last line for a key must win, as with SQLite's line-by-line upserts.
    const persons = new Map<string, string | null>();
    const known = new Set<string>();
    const bans = new Map<string, [bsn: string, body: string]>();
    const own = new Map<string, [type: string, id: string, bsn: string, body: string]>();

    const flushPersons = (client: pg.PoolClient) => flush(client, persons, (rows) => [
      `INSERT INTO ${s}.subjects (bsn, contact, listed) SELECT *, true FROM unnest($1::text[], $2::jsonb[])
       ON CONFLICT (bsn) DO UPDATE SET contact = excluded.contact, listed = true`,
      [rows.map(([bsn]) => bsn), rows.map(([, contact]) => contact)],
    ]);
    // A ban or own record makes its subject known but never overwrites a contact route.
    const flushKnown = async (client: pg.PoolClient) => {
      if (known.size === 0) return;
      await client.query(`INSERT INTO ${s}.subjects (bsn, listed) SELECT unnest($1::text[]), false ON CONFLICT (bsn) DO NOTHING`, [[...known]]);
      known.clear();
    };
    // BSNs a ban or own record moved away from (the statement's CTE reads the rows as they were):
    // once the file is in, each is forgotten unless something still names it.
    const movedFrom = new Set<string>();
    const flushBans = (client: pg.PoolClient) => flush(client, bans, (rows) => [
      `WITH incoming AS (SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS t (id, bsn, body)),
            moved AS (SELECT b.bsn FROM ${s}.bans b JOIN incoming i ON i.id = b.id WHERE b.bsn <> i.bsn),
            upserted AS (INSERT INTO ${s}.bans (id, bsn, body) SELECT * FROM incoming
                         ON CONFLICT (id) DO UPDATE SET bsn = excluded.bsn, body = excluded.body)
       SELECT DISTINCT bsn FROM moved`,
      [rows.map(([id]) => id), rows.map(([, [bsn]]) => bsn), rows.map(([, [, body]]) => body)],
    ], movedFrom);
    const flushOwn = (client: pg.PoolClient) => flush(client, own, (rows) => [
      `WITH incoming AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) AS t (type, id, bsn, body)),
            moved AS (SELECT o.bsn FROM ${s}.own_records o JOIN incoming i ON i.type = o.type AND i.id = o.id WHERE o.bsn <> i.bsn),
            upserted AS (INSERT INTO ${s}.own_records (type, id, bsn, body) SELECT * FROM incoming
                         ON CONFLICT (type, id) DO UPDATE SET bsn = excluded.bsn, body = excluded.body)
       SELECT DISTINCT bsn FROM moved`,
      [0, 1, 2, 3].map((i) => rows.map(([, row]) => row[i])),
    ], movedFrom);
    const forgetUnnamed = async (client: pg.PoolClient) => {
      if (movedFrom.size === 0) return;
      await client.query(
        `DELETE FROM ${s}.subjects sub WHERE sub.bsn = ANY($1::text[]) AND NOT sub.listed
            AND NOT EXISTS (SELECT 1 FROM ${s}.bans b WHERE b.bsn = sub.bsn)
            AND NOT EXISTS (SELECT 1 FROM ${s}.own_records o WHERE o.bsn = sub.bsn)`,
        [[...movedFrom]],
      );
    };

    return this.transaction(async (client) => {
      // One load at a time per store, as SQLite's write lock gives: a load forgetting a subject its
      // moved records left could otherwise miss a ban another load is adding for that subject, and
      // a ban whose subject the store no longer knows is never found.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`soh-load:${s}`]);
      let count = 0;
      for (const record of records) {
        count++;
        if (record.type === 'person') {
          persons.set(record.bsn, record.contact ? JSON.stringify(record.contact) : null);
          if (persons.size >= BATCH) await flushPersons(client);
        } else if (record.type === 'ban') {
          const { type: _type, ...ban } = record as Ban & { type: 'ban' };
          known.add(ban.bsn);
          // The same id twice in one batch (stores are not only fed by `soh import`, which refuses
          // that): the buffer keeps the last, so the first one's BSN is moved from here.
          const buffered = bans.get(ban.id);
          if (buffered && buffered[0] !== ban.bsn) movedFrom.add(buffered[0]);
          bans.set(ban.id, [ban.bsn, JSON.stringify(ban)]);
          if (known.size >= BATCH) await flushKnown(client);
          if (bans.size >= BATCH) await flushBans(client);
        } else {
          const rec = record as OwnRecord;
          known.add(rec.bsn);
          // JSON-encoding the (type, id) pair keeps the composite key unambiguous.
          const key = JSON.stringify([rec.type, rec.id]);
          const buffered = own.get(key);
          if (buffered && buffered[2] !== rec.bsn) movedFrom.add(buffered[2]);
          own.set(key, [rec.type, rec.id, rec.bsn, JSON.stringify(rec)]);
          if (known.size >= BATCH) await flushKnown(client);
          if (own.size >= BATCH) await flushOwn(client);
        }
      }
      // Tables are independent and "known" never overwrites, so flush order does not change the
      // outcome; forgetting moved-from subjects waits for all of them.
      await flushPersons(client);
      await flushKnown(client);
      await flushBans(client);
      await flushOwn(client);
      await forgetUnnamed(client);
      // A bulk import can grow the tables by orders of magnitude; with stale statistics the planner
      // would seq-scan (and JIT-compile) every lookup until autovacuum caught up.
      await client.query(`ANALYZE ${s}.subjects, ${s}.bans, ${s}.own_records`);
      return count;
    });
  }

  async count() {
    const { rows } = await this.pool.query<{ persons: string; bans: string; own: string }>(
      `SELECT (SELECT count(*) FROM "${this.schema}".subjects) AS persons,
              (SELECT count(*) FROM "${this.schema}".bans) AS bans,
              (SELECT count(*) FROM "${this.schema}".own_records) AS own`,
    );
    const row = rows[0]!;
    return { persons: Number(row.persons), bans: Number(row.bans), ownRecords: Number(row.own) };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      // A transaction is a load or the schema's creation, which may take minutes (a million-line
      // import and its ANALYZE): the bound on lookups is not for them.
      await client.query('SET LOCAL statement_timeout = 0');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      // A connection that cannot even roll back is discarded rather than returned to the pool.
      broken = await client.query('ROLLBACK').then(() => undefined, (e: Error) => e);
      throw err;
    } finally {
      client.release(broken);
    }
  }
}

/** Writes a buffer in one statement; the BSNs it returns, if any, go to `returned`. */
async function flush<K, V>(
  client: pg.PoolClient,
  buffer: Map<K, V>,
  statement: (rows: [K, V][]) => [string, unknown[]],
  returned?: Set<string>,
): Promise<void> {
  if (buffer.size === 0) return;
  const [sql, params] = statement([...buffer]);
  const { rows } = await client.query<{ bsn: string }>(sql, params);
  for (const row of rows) returned?.add(row.bsn);
  buffer.clear();
}
