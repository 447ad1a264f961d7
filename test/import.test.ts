import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../nodes/store/postgres.ts';
import { holdForReplacing } from '../nodes/store/serving.ts';
import { soh } from './support/federation.ts';
import { PERSONS, banLine, ndjson } from './support/fixtures.ts';
import { type NodeStoreRows, readNodeStore } from './support/node-store.ts';

const PG_ADMIN_URL = process.env.SOH_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** DESIGN §3's invalid test vector: nine digits failing the 11-check. */
const BAD_BSN = '999998620';

const contact = { organisation: 'Politie Eenheid Rotterdam', unit: 'Team Zorg en Veiligheid', phone: '+31 10 000 0000' };

const ban = (id: string, bsn: string, extra: Record<string, unknown> = {}) => ({
  ...banLine(id, bsn, { validUntil: '2027-01-01T00:00:00Z', protectedBsns: [PERSONS.victim], electronicMonitoring: true }),
  ...extra,
});

/** Five good politie lines: two persons and three bans (one of them about a person with no person line). */
const GOOD_POLITIE = [
  { type: 'person', bsn: PERSONS.subject, contact },
  { type: 'person', bsn: PERSONS.unrelated },
  ban('PN-10-100001-25/1', PERSONS.subject),
  {
    ...ban('PN-10-100002-25/1', PERSONS.subject, { kind: 'LOCATION', legalBasis: 'art. 509hh Sv', imposedBy: 'OM', validUntil: null }),
    area: { description: '5 km rond woning slachtoffer', center: { lat: 51.92, lon: 4.48 }, radiusMeters: 5000 },
  },
  ban('PN-10-100003-25/1', PERSONS.vtOnly, { status: 'REVOKED', statusChangedAt: '2025-06-01T00:00:00Z' }),
];


describe('soh import <node> FILE.ndjson', () => {
  const root = mkdtempSync(join(tmpdir(), 'soh-import-'));
  let fileCount = 0;
  /** A fresh data directory per case, so that cases never see each other's stores. */
  const freshDataDir = () => mkdtempSync(join(root, 'data-'));
  const writeFile = (text: string) => {
    const file = join(root, `records-${++fileCount}.ndjson`);
    writeFileSync(file, text);
    return file;
  };
  const importInto = (dataDir: string, node: string, file: string) => soh(['import', node, file], { SOH_DATA_DIR: dataDir });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  describe('a valid file', () => {
    let dataDir: string;
    let result: Awaited<ReturnType<typeof soh>>;

    beforeAll(async () => {
      dataDir = freshDataDir();
      result = await importInto(dataDir, 'politie', writeFile(ndjson(GOOD_POLITIE)));
    });

    it('exits 0 and prints how many records were loaded into which node', () => {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout.trim()).toBe(`loaded 5 record(s) into politie (${join(dataDir, 'nodes', 'politie', 'store.db')})`);
    });

    it('stores the persons and bans; a ban makes its subject known even without a person line', () => {
      const rows = readNodeStore(dataDir, 'politie')!;
      expect(rows.subjects.map((s) => s.bsn).sort()).toEqual([PERSONS.subject, PERSONS.unrelated, PERSONS.vtOnly].sort());
      expect(JSON.parse(rows.subjects.find((s) => s.bsn === PERSONS.subject)!.contact!)).toEqual(contact);
      expect(rows.subjects.find((s) => s.bsn === PERSONS.unrelated)!.contact).toBeNull();
      expect(rows.bans.map((b) => b.id)).toEqual(['PN-10-100001-25/1', 'PN-10-100002-25/1', 'PN-10-100003-25/1']);
      const location = JSON.parse(rows.bans[1]!.body);
      expect(location).toMatchObject({ kind: 'LOCATION', validUntil: null, area: { radiusMeters: 5000 }, protectedBsns: [PERSONS.victim] });
      expect(JSON.parse(rows.bans[2]!.body)).toMatchObject({ status: 'REVOKED', statusChangedAt: '2025-06-01T00:00:00Z' });
      expect(rows.own_records).toEqual([]);
    });

    it('is an upsert: persons by BSN, bans by id', async () => {
      const again = await importInto(
        dataDir,
        'politie',
        writeFile(ndjson([
          { type: 'person', bsn: PERSONS.unrelated, contact: { organisation: 'Politie Eenheid Den Haag' } },
          ban('PN-10-100001-25/1', PERSONS.subject, { status: 'REVOKED', statusChangedAt: '2026-01-01T00:00:00Z' }),
        ])),
      );
      expect(again.code).toBe(0);
      expect(again.stdout.trim()).toBe(`loaded 2 record(s) into politie (${join(dataDir, 'nodes', 'politie', 'store.db')})`);
      const rows = readNodeStore(dataDir, 'politie')!;
      expect(rows.subjects).toHaveLength(3);
      expect(rows.bans).toHaveLength(3);
      expect(JSON.parse(rows.subjects.find((s) => s.bsn === PERSONS.unrelated)!.contact!)).toEqual({ organisation: 'Politie Eenheid Den Haag' });
      expect(JSON.parse(rows.bans.find((b) => b.id === 'PN-10-100001-25/1')!.body).status).toBe('REVOKED');
    });

    it("loads each organisation's own record types, and tolerates CRLF line ends", async () => {
      const vtDir = freshDataDir();
      const vt = await importInto(
        vtDir,
        'veilig-thuis',
        writeFile(
          ndjson([
            { type: 'person', bsn: PERSONS.vtOnly, contact: { organisation: 'Veilig Thuis Haaglanden', phone: '0800 2000' } },
            { type: 'report', id: 'VT-9', bsn: PERSONS.vtOnly, region: 'Haaglanden', receivedAt: '2026-04-01T09:00:00+02:00', category: 'STALKING' },
          ]).replace(/\n/g, '\r\n'),
        ),
      );
      expect(vt.code).toBe(0);
      expect(vt.stdout.trim()).toMatch(/^loaded 2 record\(s\) into veilig-thuis \(.*store\.db\)$/);
      const rows = readNodeStore(vtDir, 'veilig-thuis')!;
      expect(rows.subjects.map((s) => s.bsn)).toEqual([PERSONS.vtOnly]);
      expect(rows.own_records.map((r) => [r.type, r.id, r.bsn])).toEqual([['report', 'VT-9', PERSONS.vtOnly]]);

      const recDir = freshDataDir();
      const rec = await importInto(
        recDir,
        'reclassering',
        writeFile(ndjson([{ type: 'supervision', id: 'TZ-9', bsn: PERSONS.subject, office: 'Reclassering Rotterdam', since: '2025-01-01T00:00:00Z' }])),
      );
      expect(rec.code).toBe(0);
      expect(readNodeStore(recDir, 'reclassering')!.own_records.map((r) => [r.type, r.id])).toEqual([['supervision', 'TZ-9']]);
    });
  });

  describe('a file with one bad line (line 3 of 5)', () => {
    let dataDir: string;
    let before: NodeStoreRows;

    beforeAll(async () => {
      // A store that already holds data: a failed import must leave it exactly as it was.
      dataDir = freshDataDir();
      const seeded = await importInto(dataDir, 'politie', writeFile(ndjson([{ type: 'person', bsn: PERSONS.unknown, contact }])));
      expect(seeded.code).toBe(0);
      before = readNodeStore(dataDir, 'politie')!;
      expect(before.subjects).toHaveLength(1);
    });

    /** Lines 1, 2, 4 and 5 are good and would change the store; line 3 is the given one. */
    const withLine3 = (line3: unknown) => {
      const lines = [GOOD_POLITIE[0], GOOD_POLITIE[1], line3, GOOD_POLITIE[2], GOOD_POLITIE[4]].map((line) =>
        typeof line === 'string' ? line : JSON.stringify(line),
      );
      return `${lines.join('\n')}\n`;
    };

    it.each([
      ['a BSN failing the 11-check', { type: 'person', bsn: BAD_BSN }, /person: bsn: not a valid BSN/],
      ['a protected BSN failing the 11-check', ban('PN-10-100009-25/1', PERSONS.subject, { protectedBsns: [BAD_BSN] }), /ban: protectedBsns\.0: not a valid BSN/],
      ['a BSN of eight digits', { type: 'person', bsn: PERSONS.subject.slice(0, 8) }, /person: bsn: not a valid BSN/],
      ['an unknown record type', { type: 'vehicle', id: 'X-1', bsn: PERSONS.subject }, /unknown record type "vehicle" for node politie/],
      ['a record without a type', { bsn: PERSONS.subject }, /missing "type"/],
      ['an impossible date', ban('PN-10-100009-25/1', PERSONS.subject, { validFrom: '2025-13-01T00:00:00Z' }), /ban: validFrom: not an RFC 3339 date-time/],
      ['a day the month does not have', ban('PN-10-100009-25/1', PERSONS.subject, { validUntil: '2026-02-30T00:00:00Z' }), /ban: validUntil: not an RFC 3339 date-time/],
      ['hour 24', ban('PN-10-100009-25/1', PERSONS.subject, { validFrom: '2025-01-01T24:00:00Z' }), /ban: validFrom: not an RFC 3339 date-time/],
      ['a date without time and offset', ban('PN-10-100009-25/1', PERSONS.subject, { validFrom: '2025-01-01' }), /ban: validFrom: not an RFC 3339 date-time/],
      ['an instant finer than a millisecond, which every comparison would cut off', ban('PN-10-100009-25/1', PERSONS.subject, { validUntil: '2026-01-01T00:00:00.0009Z' }), /ban: validUntil: more precise than a millisecond/],
      ['a radius no GraphQL Int holds, which the node could never serve', ban('PN-10-100009-25/1', PERSONS.subject, { kind: 'LOCATION', area: { description: 'rond woning', center: { lat: 52, lon: 4 }, radiusMeters: 3_000_000_000 } }), /ban: area\.radiusMeters: /],
      ['a ban ending before it starts', ban('PN-10-100009-25/1', PERSONS.subject, { validUntil: '2024-01-01T00:00:00Z' }), /ban: validUntil: validUntil must be after validFrom/],
      ['an unknown ban kind', ban('PN-10-100009-25/1', PERSONS.subject, { kind: 'TRAVEL' }), /ban: kind: /],
      ['an unknown ban status', ban('PN-10-100009-25/1', PERSONS.subject, { status: 'PENDING' }), /ban: status: /],
      ['an unexpected field', { type: 'person', bsn: PERSONS.subject, name: 'J. Jansen' }, /person: .*name/],
      ['a NUL character in a text', ban('PN-10-100009-25/1', PERSONS.subject, { legalBasis: 'art. 38v\u0000 Sv' }), /ban: legalBasis: holds a NUL character/],
      ['an unpaired surrogate in a text', ban('PN-10-100009-25/1', PERSONS.subject, { conditions: 'geen contact \ud83d' }), /ban: conditions: .*unpaired surrogate/],
      ['a BSN as the record type', { type: PERSONS.victim, bsn: PERSONS.subject }, /unknown record type \(not shown: not a plain name\) for node politie/],
      ['a BSN as an unexpected key', { type: 'person', bsn: PERSONS.subject, [PERSONS.victim]: 'x' }, /person: unrecognized key \(not shown: not a plain name\)/],
      ['a key that is a BSN inside a nested object', { type: 'person', bsn: PERSONS.subject, contact: { [PERSONS.victim]: 'a\u0000' } }, /person: contact\.organisation: /],
      ['a line nested deeper than any record, which a recursive check would crash on', `{"type":"person","bsn":"${PERSONS.subject}","contact":${'['.repeat(200_000)}${']'.repeat(200_000)}}`, /person: contact: /],
      ['half a circle, which every location check would answer with null', ban('PN-10-100009-25/1', PERSONS.subject, { kind: 'LOCATION', area: { description: 'rond woning', center: { lat: 52, lon: 4 } } }), /ban: area\.radiusMeters: center and radiusMeters come together/],
      ['a contact ban that protects no one', ban('PN-10-100009-25/1', PERSONS.subject, { kind: 'CONTACT', protectedBsns: [] }), /ban: protectedBsns: a CONTACT or HOUSE ban protects at least one person/],
      ['a ban that protects the person under it', ban('PN-10-100009-25/1', PERSONS.subject, { protectedBsns: [PERSONS.victim, PERSONS.subject] }), /ban: protectedBsns: the person under the ban is not among those it protects/],
      ['a ban without protectedBsns, which contactBanned would read as protecting no one', { ...ban('PN-10-100009-25/1', PERSONS.subject), protectedBsns: undefined }, /ban: protectedBsns: /],
      ['a ban without validUntil, which read as open-ended would run for ever', { ...ban('PN-10-100009-25/1', PERSONS.subject), validUntil: undefined }, /ban: validUntil: /],
      ['a ban without electronicMonitoring', { ...ban('PN-10-100009-25/1', PERSONS.subject), electronicMonitoring: undefined }, /ban: electronicMonitoring: /],
      ['a location ban without its area', ban('PN-10-100009-25/1', PERSONS.subject, { kind: 'LOCATION' }), /ban: area: a LOCATION or HOUSE ban needs its area/],
      ['a person given twice, whose first line an upsert would drop without a word', { type: 'person', bsn: PERSONS.subject }, /person: the same bsn as line 1 \(each record once per file\)/],
      ['malformed JSON', '{"type":"person","bsn":"' + PERSONS.subject + '"', /not valid JSON/],
      ['a JSON value that is not an object', '[1,2,3]', /missing "type"/],
    ])('rejects %s: exit 1, names line 3 and the reason, loads nothing', async (_name, line3, reason) => {
      const file = writeFile(withLine3(line3));
      const result = await importInto(dataDir, 'politie', file);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]!.startsWith(`${file}:3: `)).toBe(true);
      expect(lines[0]).toMatch(reason);
      expect(lines[1]).toBe('soh import: 1 bad line(s); nothing was loaded into politie');
      // The reason never quotes the line's content.
      for (const bsn of [BAD_BSN, PERSONS.subject, PERSONS.victim, PERSONS.unrelated, PERSONS.vtOnly]) expect(result.stderr).not.toContain(bsn);
      expect(readNodeStore(dataDir, 'politie')).toEqual(before);
    });

    it('rejects an own record id longer than 128 characters, which PostgreSQL could not index and SQLite would keep', async () => {
      const vtDir = freshDataDir();
      const report = { type: 'report', id: `VT-${'9'.repeat(200)}`.replace(/9/g, 'x'), bsn: PERSONS.subject, region: 'Rotterdam-Rijnmond', receivedAt: '2026-04-01T09:00:00Z', category: 'STALKING' };
      const result = await importInto(vtDir, 'veilig-thuis', writeFile(ndjson([report])));
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/:1: report: id: /);
      expect(existsSync(join(vtDir, 'nodes', 'veilig-thuis', 'store.db'))).toBe(false);
    });

    it('rejects a ban line at veilig-thuis by name, which takes no bans', async () => {
      const vtDir = freshDataDir();
      const file = writeFile(
        ndjson([
          { type: 'person', bsn: PERSONS.subject },
          { type: 'person', bsn: PERSONS.vtOnly },
          ban('PN-10-100001-25/1', PERSONS.subject),
          { type: 'person', bsn: PERSONS.unrelated },
          { type: 'report', id: 'VT-1', bsn: PERSONS.subject, region: 'Rotterdam-Rijnmond', receivedAt: '2026-04-01T09:00:00Z', category: 'STALKING' },
        ]),
      );
      const result = await importInto(vtDir, 'veilig-thuis', file);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`${file}:3: unknown record type "ban" for node veilig-thuis`);
      expect(result.stderr).toContain('nothing was loaded into veilig-thuis');
      // Nothing loaded, so not even an empty store was created.
      expect(readNodeStore(vtDir, 'veilig-thuis')?.subjects ?? []).toEqual([]);
    });
  });

  it('names every bad line, counting blank lines, and loads nothing', async () => {
    const dataDir = freshDataDir();
    const text = [
      JSON.stringify({ type: 'person', bsn: PERSONS.subject }),
      '',
      JSON.stringify({ type: 'person', bsn: BAD_BSN }),
      '   ',
      'not json at all',
      JSON.stringify(ban('PN-10-100001-25/1', PERSONS.subject)),
      JSON.stringify({ type: 'report', id: 'R', bsn: PERSONS.subject }),
    ].join('\n');
    const file = writeFile(text);
    const result = await importInto(dataDir, 'om', file);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      `${file}:3: person: bsn: not a valid BSN (9 digits passing the 11-check)`,
      `${file}:5: not valid JSON`,
      `${file}:7: unknown record type "report" for node om (accepted here: person, ban)`,
      'soh import: 3 bad line(s); nothing was loaded into om',
    ]);
    expect(readNodeStore(dataDir, 'om')?.subjects ?? []).toEqual([]);
  });

  it('loads nothing from an empty file, and says so', async () => {
    const dataDir = freshDataDir();
    const seeded = await importInto(dataDir, 'om', writeFile(ndjson([ban('PN-10-100001-25/1', PERSONS.subject)])));
    expect(seeded.code).toBe(0);
    const before = readNodeStore(dataDir, 'om');
    for (const text of ['', '\n\n  \n']) {
      const result = await importInto(dataDir, 'om', writeFile(text));
      expect(result.code).toBe(0);
      expect(result.stdout.trim()).toMatch(/^loaded 0 record\(s\) into om \(.*store\.db\)$/);
      expect(readNodeStore(dataDir, 'om')).toEqual(before);
    }
  });

  it('waits for no seed: refused while soh seed replaces the stores, or after one that did not finish, and loads nothing', async () => {
    const dataDir = freshDataDir();
    const file = writeFile(ndjson(GOOD_POLITIE));
    const letGo = holdForReplacing('politie', join(dataDir, 'nodes', 'politie'), 'seeding');
    try {
      const during = await importInto(dataDir, 'politie', file);
      expect(during.code).toBe(1);
      expect(during.stderr).toContain('is being replaced (soh seed): import when that has finished');
      expect(during.stdout).toBe('');
    } finally {
      letGo();
    }
    expect(existsSync(join(dataDir, 'nodes', 'politie', 'store.db'))).toBe(false);

    writeFileSync(join(dataDir, 'seed.unfinished'), '');
    const after = await importInto(dataDir, 'politie', file);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('an earlier seed under');
    expect(after.stderr).toContain('nothing was loaded into politie');
    expect(existsSync(join(dataDir, 'nodes', 'politie', 'store.db'))).toBe(false);
  });

  it('refuses an unknown node with a usage error (exit 2) naming the nodes, and creates nothing', async () => {
    const dataDir = freshDataDir();
    const file = writeFile(ndjson([{ type: 'person', bsn: PERSONS.subject }]));
    const result = await importInto(dataDir, 'kmar', file);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown node "kmar"');
    expect(result.stderr).toContain('politie, veilig-thuis, om, reclassering');
    expect(existsSync(join(dataDir, 'nodes'))).toBe(false);
  });

  it('refuses a missing file (exit 1) and a missing argument (exit 2)', async () => {
    const dataDir = freshDataDir();
    const missing = await importInto(dataDir, 'politie', join(root, 'does-not-exist.ndjson'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot read');
    expect(missing.stderr).toContain('ENOENT');
    const noFile = await soh(['import', 'politie'], { SOH_DATA_DIR: dataDir });
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('soh import <politie|veilig-thuis|om|reclassering> FILE.ndjson');
    expect(existsSync(join(dataDir, 'nodes'))).toBe(false);
  });

  it.each([
    ['empty', '', /SOH_NODE_DATABASE_URL is set but empty/],
    ['not a PostgreSQL URL', 'mysql://127.0.0.1/soh', /SOH_NODE_DATABASE_URL/],
  ])('refuses a SOH_NODE_DATABASE_URL that is %s, as `soh node` does, and loads nothing anywhere', async (_name, url, reason) => {
    const dataDir = freshDataDir();
    const result = await soh(['import', 'politie', writeFile(ndjson(GOOD_POLITIE))], { SOH_DATA_DIR: dataDir, SOH_NODE_DATABASE_URL: url });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(reason);
    expect(result.stdout).toBe('');
    expect(existsSync(join(dataDir, 'nodes'))).toBe(false);
  });

  it("loads into the node's PostgreSQL store when SOH_NODE_DATABASE_URL names one, says so without the URL, and writes no embedded store", async () => {
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    const database = `soh_test_import_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${database}`);
    const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${database}`);
    try {
      const dataDir = freshDataDir();
      const result = await soh(['import', 'politie', writeFile(ndjson(GOOD_POLITIE))], { SOH_DATA_DIR: dataDir, SOH_NODE_DATABASE_URL: url });
      expect(result.code).toBe(0);
      expect(result.stdout.trim()).toBe('loaded 5 record(s) into politie (PostgreSQL, SOH_NODE_DATABASE_URL)');
      expect(existsSync(join(dataDir, 'nodes', 'politie', 'store.db'))).toBe(false);
      const store = await PostgresStore.connect(url, 'politie');
      try {
        expect((await store.lookup([PERSONS.subject]))[0]?.contact).toEqual(contact);
      } finally {
        await store.close();
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    }
  });
});
