import { type ChildProcess, spawn } from 'node:child_process';
import { type KeyObject, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, verify } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../gateway/auth/caller-token.ts';
import { DownstreamTokens } from '../gateway/auth/downstream-token.ts';
import { GatewayKeys } from '../gateway/auth/gateway-keys.ts';
import { AuditLog } from '../lib/audit/log.ts';
import type { GatewayAccessRecord } from '../lib/audit/records.ts';
import { systemClock } from '../lib/clock.ts';
import { loadOrCreateKeys } from '../lib/keys.ts';
import { NODE_IDS } from '../lib/partners.ts';
import { ALL_BSNS, AREA, AT, PERSONS, RFC8785_EXAMPLES } from './support/fixtures.ts';
import { type Federation, soh, startFederation } from './support/federation.ts';
import { accessRecordsOf } from './support/node-calls.ts';

// DESIGN §7: every component keeps an append-only, hash-chained audit log with a signed head;
// `soh audit verify` checks every chain and head and names the first break (exit 1). A record that
// cannot be written fails the request closed (AUDIT_UNAVAILABLE) and turns /readyz unready.

const SOH = fileURLToPath(new URL('../bin/soh.js', import.meta.url));
const COMPONENTS = ['gateway', ...NODE_IDS] as const;
type Component = (typeof COMPONENTS)[number];
const ZERO_HASH = '0'.repeat(64);

const HIT_CHECK = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) {
  subjectRef complete anyHit partners { partner status contact { organisation unit phone } } } }`;
const ACTIVE_BANS = `query Bans($bsn: String!, $at: DateTime, $location: GeoPointInput) {
  activeBans(subject: { bsn: $bsn }, at: $at, location: $location) { complete underActiveBan bans { id violatedAt } partners { partner status } } }`;
const CONTACT_BANNED = `query Contact($bsn: String!, $other: String!, $at: DateTime) {
  contactBanned(subject: { bsn: $bsn }, counterpart: { bsn: $other }, at: $at) { complete banned banIds } }`;
const ACCESS_LOG = `query Log($bsn: String!) { accessLog(filter: { subjectBsn: $bsn }) { edges { node { traceId decision } } } }`;

const home = (dataDir: string, component: Component) => (component === 'gateway' ? join(dataDir, 'gateway') : join(dataDir, 'nodes', component));
const auditFile = (dataDir: string, component: Component) => join(home(dataDir, component), 'audit.db');

interface StoredRow {
  seq: number;
  body: string;
}
interface Head {
  seq: number;
  hash: string;
  kid: string;
  signature: string;
}

function readLog(file: string): { rows: StoredRow[]; head: Head | null } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT seq, body FROM records ORDER BY seq').all() as StoredRow[];
    const head = (db.prepare('SELECT seq, hash, kid, signature FROM head').get() as Head | undefined) ?? null;
    return { rows, head };
  } finally {
    db.close();
  }
}

/** RFC 8785 canonical JSON, written here independently of the product's implementation. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value)
      .filter(([, member]) => member !== undefined)
      // JavaScript's relational comparison of strings is by UTF-16 code units, as RFC 8785 §3.2.3 sorts.
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, member]) => `${JSON.stringify(key)}:${canonical(member)}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function hashOf(record: Record<string, unknown>): string {
  const { hash: _hash, ...rest } = record;
  return sha256(canonical(rest));
}

/** The head signs the domain-separated message "soh-audit-head\n<seq>\n<hash>" with Ed25519. */
const headMessage = (seq: number, hash: string) => Buffer.from(`soh-audit-head\n${seq}\n${hash}`);

function headVerifies(head: Head, publicKey: KeyObject): boolean {
  return verify(null, headMessage(head.seq, head.hash), publicKey, Buffer.from(head.signature, 'base64url'));
}

/** A node's public key, derived from the key file named by the head's kid. */
function nodePublicKey(dataDir: string, component: Component, kid: string): KeyObject {
  const jwk = JSON.parse(readFileSync(join(home(dataDir, component), 'keys', `${kid}.private.jwk.json`), 'utf8'));
  return createPublicKey(createPrivateKey({ key: jwk, format: 'jwk' }));
}

async function verifyAudit(dataDir: string, ...args: string[]) {
  return soh(['audit', 'verify', ...args], { SOH_DATA_DIR: dataDir });
}

function linesOf(stdout: string): Map<string, string> {
  return new Map(
    stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf(':')), line] as const),
  );
}

/** Stops every component gracefully and keeps the data directory (Federation.stop would delete it). */
async function stopKeepingData(federation: Federation): Promise<void> {
  await federation.gateway.close();
  await Promise.all(Object.values(federation.nodes).map((node) => endProcess(node.process)));
}

function endProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGCONT');
    child.kill('SIGTERM');
  });
}

describe('audit chains after real traffic (DESIGN §7)', () => {
  let federation: Federation;
  let dataDir: string;
  let gatewayJwks: { keys: Record<string, unknown>[] };
  const scratch: string[] = [];
  const burstSub = `burst-${randomUUID()}`;
  const BURST = 30;
  let burst: { status: number; body: any }[];
  const counts = {} as Record<Component, number>;
  let stopped = false;

  beforeAll(async () => {
    // A generous deadline: the burst below must be answered in full on a small shared machine.
    federation = await startFederation({ deadlineMs: 10_000 });
    dataDir = federation.dataDir;
    const vt = await federation.issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-2026-1' });
    const police = await federation.issuer.token({ sub: 'agent-7' });
    const probation = await federation.issuer.token({ org: 'reclassering', roles: ['reclassering-medewerker'], purpose: 'reclassering-supervision', case_ref: 'RN-2026-3' });
    const officer = await federation.issuer.token({ org: 'om', roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined, sub: 'fg-om' });
    const wrongPurpose = await federation.issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'], purpose: 'police-ban-enforcement' });

    const answers = [
      await federation.query(vt, HIT_CHECK, { bsn: PERSONS.subject }),
      await federation.query(vt, HIT_CHECK, { bsn: PERSONS.vtOnly }),
      await federation.query(vt, HIT_CHECK, { bsn: PERSONS.unknown }),
      await federation.query(police, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026, location: AREA.inside }),
      await federation.query(police, CONTACT_BANNED, { bsn: PERSONS.subject, other: PERSONS.victim, at: AT.may2026 }),
      await federation.query(probation, ACTIVE_BANS, { bsn: PERSONS.subject }),
      await federation.query(officer, ACCESS_LOG, { bsn: PERSONS.subject }),
    ];
    for (const answer of answers) expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect((await federation.query(wrongPurpose, HIT_CHECK, { bsn: PERSONS.subject })).status).toBe(403);
    expect((await federation.query(vt, ACTIVE_BANS, { bsn: PERSONS.subject })).status).toBe(403);
    expect((await federation.query(null, HIT_CHECK, { bsn: PERSONS.subject })).status).toBe(401);

    const burstToken = await federation.issuer.token({ org: 'veilig-thuis-haaglanden', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-2026-2', sub: burstSub });
    const persons = [PERSONS.subject, PERSONS.vtOnly, PERSONS.unknown, PERSONS.unrelated];
    burst = await Promise.all(Array.from({ length: BURST }, (_, i) => federation.query(burstToken, HIT_CHECK, { bsn: persons[i % persons.length]! })));

    gatewayJwks = (await (await fetch(`${federation.gatewayUrl}/.well-known/jwks.json`)).json()) as typeof gatewayJwks;
    await stopKeepingData(federation);
    stopped = true;
    for (const component of COMPONENTS) counts[component] = readLog(auditFile(dataDir, component)).rows.length;
  }, 120_000);

  afterAll(async () => {
    if (federation && !stopped) await federation.stop();
    for (const dir of [dataDir, ...scratch]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh copy of the stopped federation's data directory with one component's log altered. */
  function tampered(component: Component, alter: (db: Database.Database, rows: StoredRow[]) => void): string {
    const dir = mkdtempSync(join(tmpdir(), 'soh-tamper-'));
    scratch.push(dir);
    cpSync(dataDir, dir, { recursive: true });
    const db = new Database(auditFile(dir, component), { fileMustExist: true });
    try {
      const rows = db.prepare('SELECT seq, body FROM records ORDER BY seq').all() as StoredRow[];
      alter(db, rows);
    } finally {
      db.close();
    }
    return dir;
  }

  /** Exit 1, the broken component named with its first broken seq, every other component still ok. */
  async function expectBreak(dir: string, component: Component, seq: number) {
    const result = await verifyAudit(dir);
    expect(result.code, result.stdout + result.stderr).toBe(1);
    const lines = linesOf(result.stdout);
    expect(lines.get(component)).toMatch(new RegExp(`^${component}: BROKEN at seq ${seq}\\b`));
    for (const other of COMPONENTS.filter((c) => c !== component)) expect(lines.get(other)).toMatch(new RegExp(`^${other}: ok\\b`));
    return lines.get(component)!;
  }

  it('every request of a concurrent burst is answered and has its records in every log', () => {
    expect(burst.map((answer) => answer.status)).toEqual(Array(BURST).fill(200));
    for (const answer of burst) expect(answer.body.data!.hitCheck.complete).toBe(true);

    const gateway = new Database(auditFile(dataDir, 'gateway'), { readonly: true });
    const gatewayTraces = (gateway.prepare("SELECT trace_id FROM records WHERE kind = 'access' AND requester_sub = ?").all(burstSub) as { trace_id: string }[]).map((r) => r.trace_id);
    const processing = gatewayTraces.map(
      (traceId) => (gateway.prepare("SELECT count(*) AS n FROM records WHERE kind = 'processing' AND trace_id = ?").get(traceId) as { n: number }).n,
    );
    gateway.close();
    expect(gatewayTraces).toHaveLength(BURST);
    expect(new Set(gatewayTraces).size).toBe(BURST);
    expect(processing).toEqual(Array(BURST).fill(1));

    for (const node of NODE_IDS) {
      const db = new Database(auditFile(dataDir, node), { readonly: true });
      const rows = db.prepare("SELECT body FROM records WHERE kind = 'access' AND requester_sub = ?").all(burstSub) as { body: string }[];
      db.close();
      const traces = rows.map((row) => JSON.parse(row.body).trace_id as string);
      expect(traces, node).toHaveLength(BURST);
      expect(new Set(traces), node).toEqual(new Set(gatewayTraces));
    }
  });

  it('`soh audit verify` exits 0 on the stopped federation and prints the record count of every component', async () => {
    const result = await verifyAudit(dataDir);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const lines = linesOf(result.stdout);
    expect([...lines.keys()].sort()).toEqual([...COMPONENTS].sort());
    for (const component of COMPONENTS) {
      expect(counts[component]).toBeGreaterThan(BURST);
      expect(lines.get(component)).toMatch(new RegExp(`^${component}: ok\\b.*\\b${counts[component]} records\\b.*\\bseq ${counts[component]}\\b`));
    }
  });

  it('each chain numbers its records 1, 2, …, starts from 64 zeros and hashes the RFC 8785 form without `hash`', () => {
    for (const component of COMPONENTS) {
      const { rows } = readLog(auditFile(dataDir, component));
      let previous = ZERO_HASH;
      rows.forEach((row, index) => {
        const record = JSON.parse(row.body) as Record<string, unknown>;
        expect(row.seq, component).toBe(index + 1);
        expect(record['seq'], component).toBe(index + 1);
        expect(record['prevHash'], `${component} seq ${row.seq}`).toBe(previous);
        expect(record['hash'], `${component} seq ${row.seq}`).toMatch(/^[0-9a-f]{64}$/);
        expect(hashOf(record), `${component} seq ${row.seq}`).toBe(record['hash']);
        previous = record['hash'] as string;
      });
    }
  });

  it.each(RFC8785_EXAMPLES)('the canonicalisation here agrees with the RFC 8785 $section example', ({ input, canonical: expected }) => {
    expect(canonical(JSON.parse(input))).toBe(expected);
  });

  it("each head names the chain's last record and its signature verifies with the component's public key", () => {
    for (const component of COMPONENTS) {
      const { rows, head } = readLog(auditFile(dataDir, component));
      expect(head, component).not.toBeNull();
      const last = JSON.parse(rows.at(-1)!.body) as { seq: number; hash: string };
      expect(head!.seq).toBe(last.seq);
      expect(head!.hash).toBe(last.hash);
      let publicKey: KeyObject;
      if (component === 'gateway') {
        // The gateway's audit-head key is the one it publishes in its JWKS.
        const jwk = gatewayJwks.keys.find((key) => key['kid'] === head!.kid);
        expect(jwk, 'the head kid is in the published JWKS').toBeDefined();
        publicKey = createPublicKey({ key: jwk as never, format: 'jwk' });
      } else {
        publicKey = nodePublicKey(dataDir, component, head!.kid);
      }
      expect(headVerifies(head!, publicKey), component).toBe(true);
      const otherKey = generateKeyPairSync('ed25519').publicKey;
      expect(headVerifies(head!, otherKey)).toBe(false);
    }
  });

  it('no audit file holds a BSN', () => {
    for (const component of COMPONENTS) {
      for (const file of [auditFile(dataDir, component), `${auditFile(dataDir, component)}-wal`]) {
        if (!existsSync(file)) continue;
        const bytes = readFileSync(file).toString('latin1');
        for (const bsn of ALL_BSNS) expect(bytes.includes(bsn), `${file} holds a fixture BSN`).toBe(false);
      }
    }
  });

  describe('tampering is found and named (one case per fresh copy)', () => {
    const middle = (component: Component) => Math.floor(counts[component] / 2);

    it('a field edited inside a record body breaks the chain at that record', async () => {
      const seq = middle('politie');
      const dir = tampered('politie', (db, rows) => {
        const record = JSON.parse(rows[seq - 1]!.body);
        if (record.type === 'access') record.requester.sub = 'someone-else';
        else record.attributes['soh.outcome'] = record.attributes['soh.outcome'] === 'HIT' ? 'NO_HIT' : 'HIT';
        expect(db.prepare('UPDATE records SET body = ? WHERE seq = ?').run(JSON.stringify(record), seq).changes).toBe(1);
      });
      const line = await expectBreak(dir, 'politie', seq);
      expect(line).toContain(`(${counts.politie} records)`);
    });

    it('an edited record whose own hash was recomputed breaks the link to the next record', async () => {
      const seq = middle('om');
      const dir = tampered('om', (db, rows) => {
        const record = JSON.parse(rows[seq - 1]!.body) as Record<string, unknown>;
        record['trace_id'] = '0'.repeat(32);
        record['hash'] = hashOf(record);
        // The search column too, as a careful forger would: only the link to the next record is left to give it away.
        db.prepare('UPDATE records SET body = ?, trace_id = ? WHERE seq = ?').run(JSON.stringify(record), record['trace_id'], seq);
      });
      await expectBreak(dir, 'om', seq + 1);
    });

    it('an edited last record with a recomputed hash no longer matches the signed head', async () => {
      const seq = counts.reclassering;
      const dir = tampered('reclassering', (db, rows) => {
        const record = JSON.parse(rows[seq - 1]!.body) as Record<string, unknown>;
        record['time'] = '2020-01-01T00:00:00.000Z';
        record['hash'] = hashOf(record);
        db.prepare('UPDATE records SET body = ? WHERE seq = ?').run(JSON.stringify(record), seq);
      });
      await expectBreak(dir, 'reclassering', seq);
    });

    it('a deleted middle record is named as the first break', async () => {
      const seq = middle('veilig-thuis');
      const dir = tampered('veilig-thuis', (db) => {
        expect(db.prepare('DELETE FROM records WHERE seq = ?').run(seq).changes).toBe(1);
      });
      await expectBreak(dir, 'veilig-thuis', seq);
    });

    it('two records swapped in place break the chain at the first of them', async () => {
      const seq = middle('reclassering');
      const dir = tampered('reclassering', (db, rows) => {
        const update = db.prepare('UPDATE records SET body = ? WHERE seq = ?');
        update.run(rows[seq]!.body, seq);
        update.run(rows[seq - 1]!.body, seq + 1);
      });
      await expectBreak(dir, 'reclassering', seq);
    });

    it('two records reordered with their seqs rewritten break the chain at the first of them', async () => {
      const seq = middle('gateway');
      const dir = tampered('gateway', (db, rows) => {
        const first = JSON.parse(rows[seq - 1]!.body) as Record<string, unknown>;
        const second = JSON.parse(rows[seq]!.body) as Record<string, unknown>;
        const update = db.prepare('UPDATE records SET body = ? WHERE seq = ?');
        update.run(JSON.stringify({ ...second, seq }), seq);
        update.run(JSON.stringify({ ...first, seq: seq + 1 }), seq + 1);
      });
      await expectBreak(dir, 'gateway', seq);
    });

    it('a truncated tail under an untouched head is named at the first missing seq', async () => {
      const n = counts.gateway;
      const dir = tampered('gateway', (db) => {
        expect(db.prepare('DELETE FROM records WHERE seq > ?').run(n - 2).changes).toBe(2);
      });
      const line = await expectBreak(dir, 'gateway', n - 1);
      expect(line).toMatch(/truncat/);
    });

    it('a log emptied of every record under its head is broken from seq 1', async () => {
      const dir = tampered('om', (db) => db.prepare('DELETE FROM records').run());
      await expectBreak(dir, 'om', 1);
    });

    it('a head moved back to hide a truncation does not verify', async () => {
      const n = counts.politie;
      const dir = tampered('politie', (db, rows) => {
        const keep = JSON.parse(rows[n - 3]!.body) as { seq: number; hash: string };
        db.prepare('DELETE FROM records WHERE seq > ?').run(keep.seq);
        db.prepare('UPDATE head SET seq = ?, hash = ?').run(keep.seq, keep.hash);
      });
      const line = await expectBreak(dir, 'politie', n - 2);
      expect(line).toMatch(/signature/);
    });

    it('a fabricated record appended with a head signed by another key does not verify', async () => {
      const n = counts['veilig-thuis'];
      const dir = tampered('veilig-thuis', (db, rows) => {
        const last = JSON.parse(rows[n - 1]!.body) as Record<string, unknown>;
        const fabricated: Record<string, unknown> = { ...last, trace_id: 'f'.repeat(32), seq: n + 1, prevHash: last['hash'] };
        fabricated['hash'] = hashOf(fabricated);
        db.prepare("INSERT INTO records (seq, kind, trace_id, time, body) VALUES (?, 'access', ?, 0, ?)").run(n + 1, 'f'.repeat(32), JSON.stringify(fabricated));
        const attacker = generateKeyPairSync('ed25519').privateKey;
        const signature = sign(null, headMessage(n + 1, fabricated['hash'] as string), attacker).toString('base64url');
        db.prepare('UPDATE head SET seq = ?, hash = ?, signature = ?').run(n + 1, fabricated['hash'], signature);
      });
      await expectBreak(dir, 'veilig-thuis', n + 1);
    });

    it('a fabricated record appended after the signed head is named', async () => {
      const n = counts.om;
      const dir = tampered('om', (db, rows) => {
        const last = JSON.parse(rows[n - 1]!.body) as Record<string, unknown>;
        const fabricated: Record<string, unknown> = { ...last, seq: n + 1, prevHash: last['hash'] };
        fabricated['hash'] = hashOf(fabricated);
        db.prepare("INSERT INTO records (seq, kind, trace_id, time, body) VALUES (?, 'access', ?, 0, ?)").run(n + 1, last['trace_id'], JSON.stringify(fabricated));
      });
      await expectBreak(dir, 'om', n + 1);
    });

    it.each(['subject_ref', 'requester_org', 'trace_id'])(
      'an edited %s search column, which would hide a record from accessLog, is named',
      async (column) => {
        const kind = column === 'subject_ref' ? 'processing' : 'access';
        const dir = tampered('gateway', () => undefined);
        const db = new Database(auditFile(dir, 'gateway'), { fileMustExist: true });
        const { seq } = db.prepare(`SELECT seq FROM records WHERE kind = ? AND ${column} IS NOT NULL ORDER BY seq LIMIT 1`).get(kind) as { seq: number };
        db.prepare(`UPDATE records SET ${column} = 'elsewhere' WHERE seq = ?`).run(seq);
        db.close();
        expect(await expectBreak(dir, 'gateway', seq)).toContain(`the ${column} column differs from the record`);
      },
    );

    it('a key repeated in front of a record body, which SQLite reads first and the hash never sees, is named', async () => {
      // accessLog decides who sees a request from `providers` through SQLite's JSON functions, where
      // the first of two equal keys counts; JSON.parse keeps the last, so the hash still verifies.
      const dir = tampered('gateway', () => undefined);
      const db = new Database(auditFile(dir, 'gateway'), { fileMustExist: true });
      const { seq, body } = db.prepare("SELECT seq, body FROM records WHERE kind = 'access' ORDER BY seq LIMIT 1").get() as { seq: number; body: string };
      db.prepare('UPDATE records SET body = ? WHERE seq = ?').run(`{"providers":["OM"],"partners":[],${body.slice(1)}`, seq);
      expect((db.prepare("SELECT body ->> '$.providers[0]' AS first FROM records WHERE seq = ?").get(seq) as { first: string }).first).toBe('OM');
      db.close();
      expect(await expectBreak(dir, 'gateway', seq)).toContain('not the record as written');
    });

    it('an index edited to leave a record out of searches by subject is named', async () => {
      const dir = tampered('gateway', () => undefined);
      const db = new Database(auditFile(dir, 'gateway'), { fileMustExist: true });
      const { seq, ref } = db.prepare('SELECT seq, subject_ref AS ref FROM records WHERE subject_ref IS NOT NULL ORDER BY seq LIMIT 1').get() as { seq: number; ref: string };
      // The subject index swapped for an empty one of the same shape: rows, and so the chain, stay as they were.
      db.exec("CREATE INDEX hollow ON records (subject_ref) WHERE subject_ref = 'none'");
      const { rootpage } = db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'hollow'").get() as { rootpage: number };
      db.unsafeMode(true);
      db.pragma('writable_schema = ON');
      db.prepare("UPDATE sqlite_schema SET rootpage = ? WHERE name = 'records_subject'").run(rootpage);
      db.prepare("DELETE FROM sqlite_schema WHERE name = 'hollow'").run();
      db.close();
      const reader = new Database(auditFile(dir, 'gateway'), { readonly: true });
      expect(reader.prepare('SELECT seq FROM records INDEXED BY records_subject WHERE subject_ref = ?').all(ref)).not.toContainEqual({ seq });
      reader.close();
      expect(await expectBreak(dir, 'gateway', 1)).toContain('indexes do not match');
    });

    it.each([
      ['overwritten', (file: string) => writeFileSync(file, 'not a database at all')],
      ['emptied', (file: string) => writeFileSync(file, '')],
    ])('a log %s is named, and the logs after it are still checked', async (_how, damage) => {
      const dir = tampered('om', () => undefined);
      for (const suffix of ['-wal', '-shm']) rmSync(`${auditFile(dir, 'om')}${suffix}`, { force: true });
      damage(auditFile(dir, 'om'));
      const result = await verifyAudit(dir);
      expect(result.code).toBe(1);
      expect(result.stderr).not.toMatch(/at verifyLog|SqliteError/);
      expect(linesOf(result.stdout).get('om')).toMatch(/^om: BROKEN at seq 1: the audit log cannot be read as one/);
      expect(linesOf(result.stdout).get('politie')).toMatch(/^politie: ok\b/);
      expect(linesOf(result.stdout).get('reclassering')).toMatch(/^reclassering: ok\b/);
    });

    it('a record body that is not a JSON object is named', async () => {
      const seq = middle('politie');
      const dir = tampered('politie', (db) => db.prepare("UPDATE records SET body = 'null' WHERE seq = ?").run(seq));
      expect(await expectBreak(dir, 'politie', seq)).toContain('not a JSON object');
    });

    it("a deleted log of a component that has keys is named, not skipped", async () => {
      const dir = tampered('om', () => undefined);
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${auditFile(dir, 'om')}${suffix}`, { force: true });
      expect(await expectBreak(dir, 'om', 1)).toContain('the audit log is missing');
    });

    it('a removed head is a break of a non-empty chain', async () => {
      const dir = tampered('reclassering', (db) => db.prepare('DELETE FROM head').run());
      const result = await verifyAudit(dir);
      expect(result.code).toBe(1);
      expect(linesOf(result.stdout).get('reclassering')).toMatch(/^reclassering: BROKEN at seq \d+/);
    });

    it('--component narrows the check to one log', async () => {
      const seq = middle('politie');
      const dir = tampered('politie', (db) => db.prepare('DELETE FROM records WHERE seq = ?').run(seq));

      const broken = await verifyAudit(dir, '--component', 'politie');
      expect(broken.code).toBe(1);
      expect([...linesOf(broken.stdout).keys()]).toEqual(['politie']);
      expect(broken.stdout).toMatch(new RegExp(`^politie: BROKEN at seq ${seq}\\b`, 'm'));

      const intact = await verifyAudit(dir, '--component', 'om');
      expect(intact.code, intact.stdout + intact.stderr).toBe(0);
      expect([...linesOf(intact.stdout).keys()]).toEqual(['om']);
      expect(intact.stdout).toMatch(new RegExp(`^om: ok\\b.*\\b${counts.om} records`, 'm'));

      const gateway = await verifyAudit(dir, '--component', 'gateway');
      expect(gateway.code).toBe(0);
      expect([...linesOf(gateway.stdout).keys()]).toEqual(['gateway']);

      // A name that is no component is a usage mistake (exit 2), never taken for a broken chain (exit 1).
      const unknown = await verifyAudit(dir, '--component', 'no-such-component');
      expect(unknown.code).toBe(2);
      expect(unknown.stdout).toBe('');
      expect(unknown.stderr).toContain('--component must be gateway or one of');
    });
  });
});

const vtClaims = { org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-2026-9' };

async function readyz(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: await response.json() };
}


describe('a node whose audit log cannot be written fails closed', () => {
  let federation: Federation;
  const sub = `vt-${randomUUID()}`;
  let token: string;

  beforeAll(async () => {
    federation = await startFederation({ deadlineMs: 5_000 });
    token = await federation.issuer.token({ ...vtClaims, sub });
    // OM's node restarts on the same port with a storage quota its log reaches within a few calls.
    const om = federation.nodes.om;
    await endProcess(om.process);
    const log = new Database(auditFile(federation.dataDir, 'om'), { readonly: true });
    const size = Number(log.pragma('page_count', { simple: true })) * Number(log.pragma('page_size', { simple: true }));
    log.close();
    const child = spawn(process.execPath, [SOH, 'node', 'om'], {
      env: {
        ...process.env,
        SOH_DATA_DIR: federation.dataDir,
        SOH_GATEWAY_JWKS_FILE: join(federation.dataDir, 'gateway-jwks.json'),
        SOH_NODE_PORT: new URL(om.url).port,
        SOH_AUDIT_MAX_BYTES: String(size + 3 * 4096),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    federation.nodes.om = { id: 'om', url: om.url, process: child };
    await new Promise<void>((resolve, reject) => {
      let output = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        if (output.includes('listening on')) resolve();
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.once('exit', (code) => reject(new Error(`om exited with ${code}: ${output}`)));
    });
  }, 90_000);
  afterAll(() => federation?.stop());

  it('answers UNAVAILABLE for OM (never NO_HIT) once its log is full, releases nothing from it, and OM turns unready', async () => {
    const omLog = auditFile(federation.dataDir, 'om');
    const answers: { status: number; body: any }[] = [];
    let failed: { status: number; body: any } | undefined;
    for (let i = 0; i < 30 && !failed; i++) {
      const answer = await federation.query(token, HIT_CHECK, { bsn: PERSONS.unknown });
      expect(answer.status).toBe(200);
      const om = answer.body.data!.hitCheck.partners.find((p: any) => p.partner === 'OM');
      if (om.status === 'NO_HIT') answers.push(answer);
      else failed = answer;
    }
    expect(failed, 'the quota is reached within 30 requests').toBeDefined();
    const check = failed!.body.data.hitCheck;
    expect(check.partners).toEqual([
      { partner: 'POLITIE', status: 'NO_HIT', contact: null },
      { partner: 'VEILIG_THUIS', status: 'NO_HIT', contact: null },
      { partner: 'OM', status: 'UNAVAILABLE', contact: null },
      { partner: 'RECLASSERING', status: 'NO_HIT', contact: null },
    ]);
    expect(check.complete).toBe(false);
    expect(check.anyHit).toBeNull();
    expect(failed!.body.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'PARTNER_UNAVAILABLE', partner: 'OM' }) })]);

    const omReady = await readyz(federation.nodes.om.url);
    expect(omReady.status).toBe(503);
    expect(omReady.body.ready).toBe(false);
    for (const node of ['politie', 'veilig-thuis', 'reclassering'] as const) expect((await readyz(federation.nodes[node].url)).status).toBe(200);

    // A known subject: OM's contact route never leaves, the other partners still answer.
    const subject = await federation.query(token, HIT_CHECK, { bsn: PERSONS.subject });
    const partners = subject.body.data!.hitCheck.partners;
    expect(partners.find((p: any) => p.partner === 'OM')).toEqual({ partner: 'OM', status: 'UNAVAILABLE', contact: null });
    expect(partners.filter((p: any) => p.partner !== 'OM').map((p: any) => p.status)).toEqual(['HIT', 'HIT', 'HIT']);
    expect(subject.body.data!.hitCheck.anyHit).toBe(true);
    expect(JSON.stringify(subject.body)).not.toContain('Openbaar Ministerie');

    // Every call OM answered has its access record; the refused ones left none.
    expect(accessRecordsOf(omLog, sub)).toHaveLength(answers.length);
    // The gateway records the request as partial with OM unavailable.
    const gatewayRecords = accessRecordsOf(auditFile(federation.dataDir, 'gateway'), sub);
    expect(gatewayRecords).toHaveLength(answers.length + 2);
    expect(gatewayRecords.at(-1)).toMatchObject({ outcome: 'PARTIAL', partners: expect.arrayContaining([{ partner: 'OM', status: 'UNAVAILABLE' }]) });
    expect(gatewayRecords.at(-1).providers).not.toContain('OM');
  });

  it('refuses a direct call with AUDIT_UNAVAILABLE (503) and no data, and keeps its chain intact', async () => {
    const before = readLog(auditFile(federation.dataDir, 'om')).rows.length;
    const caller: Caller = { iss: federation.issuer.issuer, sub, org: vtClaims.org, roles: vtClaims.roles, purpose: vtClaims.purpose, caseRef: vtClaims.case_ref, jti: randomUUID() };
    const downstream = await new DownstreamTokens(new GatewayKeys(federation.dataDir), systemClock).mint('om', caller);
    const response = await fetch(`${federation.nodes.om.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${downstream}` },
      body: JSON.stringify({
        query: `query R($bsns: [String!]!, $refs: [String!]!, $at: DateTime!) { records(bsns: $bsns, subjectRefs: $refs, at: $at) { contact { organisation phone } } }`,
        variables: { bsns: [PERSONS.subject], refs: ['AAAAAAAAAAAAAAAAAAAAAA'], at: AT.may2026 },
      }),
    });
    const text = await response.text();
    expect(response.status).toBe(503);
    const body = JSON.parse(text);
    expect(body.errors.map((e: any) => e.extensions.code)).toEqual(['AUDIT_UNAVAILABLE']);
    expect(body.data ?? null).toBeNull();
    expect(text).not.toContain('Openbaar Ministerie');
    expect(text).not.toContain(PERSONS.subject);

    expect(readLog(auditFile(federation.dataDir, 'om')).rows).toHaveLength(before);
    const result = await verifyAudit(federation.dataDir, '--component', 'om');
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });
});

describe("the gateway whose own audit log cannot be written fails closed with 503", () => {
  let federation: Federation;
  const sub = `vt-${randomUUID()}`;

  beforeAll(async () => {
    // A new log's tables take 7 pages of 4 KiB: three more fill within a few requests.
    federation = await startFederation({ deadlineMs: 5_000, gateway: { auditMaxBytes: 10 * 4096 } });
  }, 90_000);
  afterAll(() => federation?.stop());

  it('answers AUDIT_UNAVAILABLE without any data once a record cannot be written, and /readyz turns 503', async () => {
    const token = await federation.issuer.token({ ...vtClaims, sub });
    const gatewayLog = auditFile(federation.dataDir, 'gateway');
    let answered = 0;
    let failed: { status: number; body: any } | undefined;
    for (let i = 0; i < 30 && !failed; i++) {
      const answer = await federation.query(token, HIT_CHECK, { bsn: PERSONS.subject });
      if (answer.status === 200) {
        answered++;
        expect(answer.body.data!.hitCheck.complete).toBe(true);
      } else {
        failed = answer;
      }
    }
    expect(failed, 'the quota is reached within 30 requests').toBeDefined();
    expect(failed!.status).toBe(503);
    expect(failed!.body.errors.map((e: any) => e.extensions.code)).toEqual(['AUDIT_UNAVAILABLE']);
    expect(failed!.body.data ?? null).toBeNull();
    const text = JSON.stringify(failed!.body);
    for (const leak of ['subjectRef', 'HIT', 'Politie Eenheid', 'Veilig Thuis Rotterdam', PERSONS.subject]) expect(text).not.toContain(leak);

    const ready = await readyz(federation.gatewayUrl);
    expect(ready.status).toBe(503);
    expect(ready.body.ready).toBe(false);

    // Exactly the answered requests have their access records; the failed one has none.
    expect(accessRecordsOf(gatewayLog, sub)).toHaveLength(answered);
    const result = await verifyAudit(federation.dataDir, '--component', 'gateway');
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });

  it('never answers a request without its record: each later request is either recorded or refused with 503', async () => {
    const gatewayLog = auditFile(federation.dataDir, 'gateway');
    const police = await federation.issuer.token({ sub });
    const officer = await federation.issuer.token({ org: 'politie', roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined, sub });
    const attempts: [string | null, string, Record<string, unknown>][] = [
      [police, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026 }],
      [police, CONTACT_BANNED, { bsn: PERSONS.subject, other: PERSONS.victim }],
      [officer, ACCESS_LOG, { bsn: PERSONS.subject }],
      [await federation.issuer.token({ ...vtClaims, sub }), HIT_CHECK, { bsn: PERSONS.vtOnly }],
      // The very request that could not be recorded before, again.
      [await federation.issuer.token({ ...vtClaims, sub }), HIT_CHECK, { bsn: PERSONS.subject }],
    ];
    let refused = 0;
    for (const [token, query, variables] of attempts) {
      const before = accessRecordsOf(gatewayLog, sub).length;
      const answer = await federation.query(token, query, variables);
      const after = accessRecordsOf(gatewayLog, sub).length;
      if (answer.status === 503) {
        refused++;
        expect(answer.body.errors!.map((e: any) => e.extensions.code)).toEqual(['AUDIT_UNAVAILABLE']);
        expect(answer.body.data ?? null).toBeNull();
        expect(after).toBe(before);
      } else {
        expect(after, `answered ${answer.status} without a record`).toBe(before + 1);
      }
    }
    // The log stays full: a request of the size that already failed fails again.
    expect(refused).toBeGreaterThan(0);
  });
});

describe('`soh audit verify` while a component goes on writing', () => {
  const accessRecord = (i: number): GatewayAccessRecord => ({
    type: 'access',
    component: 'gateway',
    trace_id: randomUUID().replaceAll('-', ''),
    time: new Date().toISOString(),
    requester: { org: 'politie', sub: `agent-${i}`, roles: ['politie-medewerker'] },
    purpose: 'police-ban-enforcement',
    processingActivity: 'https://example.org/activity',
    legalBasis: 'Politiewet 2012',
    caseRef: null,
    operation: { name: 'Bans', documentHash: null, fields: [] },
    decision: 'ALLOW',
    rule: 'purposes/police-ban-enforcement.yaml: allow[0]',
    policyRevision: 'r',
    outcome: 'ALLOWED',
    partners: [],
    providers: [],
  });

  it('reads records and head as of one moment: a commit during the check is no break', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'soh-live-'));
    const [key] = loadOrCreateKeys(join(dir, 'gateway', 'keys'), 'gateway-audit');
    const log = new AuditLog(join(dir, 'gateway', 'audit.db'), key!);
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) await log.appendAll(Array.from({ length: 20 }, () => accessRecord(written++)));
    })();
    try {
      for (let run = 0; run < 5; run++) {
        const result = await verifyAudit(dir);
        expect(result.code, result.stdout + result.stderr).toBe(0);
        expect(result.stdout).toMatch(/^gateway: ok, \d+ records/);
      }
      expect(written).toBeGreaterThan(1_000);
    } finally {
      writing = false;
      await writer;
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
