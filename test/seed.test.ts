import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isValidBsn } from '../lib/bsn.ts';
import { NODE_IDS, type NodeId } from '../lib/partners.ts';
import { BAN_KINDS, BAN_STATUSES, type Ban, ban as banSchema } from '../lib/records.ts';
import { holdForReplacing } from '../nodes/store/serving.ts';
import { soh, startNodeProcess, stopNode } from './support/federation.ts';
import { type NodeStoreRows, readNodeStore } from './support/node-store.ts';


function readAll(dataDir: string): Record<NodeId, NodeStoreRows> {
  return Object.fromEntries(NODE_IDS.map((node) => [node, readNodeStore(dataDir, node)!])) as Record<NodeId, NodeStoreRows>;
}

const digest = (data: NodeStoreRows) => createHash('sha256').update(JSON.stringify(data)).digest('hex');
const digests = (data: Record<NodeId, NodeStoreRows>) => Object.fromEntries(NODE_IDS.map((node) => [node, digest(data[node])]));

describe('soh seed', () => {
  const root = mkdtempSync(join(tmpdir(), 'soh-seed-'));
  const dirA = join(root, 'a');
  const dirB = join(root, 'b');
  let runA: Awaited<ReturnType<typeof soh>>;
  let runB: Awaited<ReturnType<typeof soh>>;
  let otherSeed: Record<NodeId, NodeStoreRows>;
  let a: Record<NodeId, NodeStoreRows>;
  let b: Record<NodeId, NodeStoreRows>;

  beforeAll(async () => {
    // A is first seeded with another seed and then re-seeded: (re)generation replaces what was there.
    const first = await soh(['seed', '--persons', '500', '--seed', '8'], { SOH_DATA_DIR: dirA });
    expect(first.code, first.stderr).toBe(0);
    otherSeed = readAll(dirA);
    runA = await soh(['seed', '--persons', '500', '--seed', '7'], { SOH_DATA_DIR: dirA });
    runB = await soh(['seed', '--persons', '500', '--seed', '7'], { SOH_DATA_DIR: dirB });
    a = readAll(dirA);
    b = readAll(dirB);
  }, 120_000);

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reports what it generated, per node', () => {
    for (const run of [runA, runB]) {
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^seeded 500 persons \(seed 7\) in [\d.]+ s: politie [\d,]+, veilig-thuis [\d,]+, om [\d,]+, reclassering [\d,]+ records/);
      expect(run.stderr).toContain('500/500');
    }
    expect(JSON.parse(readFileSync(join(dirB, 'seed.json'), 'utf8'))).toEqual({ persons: 500, seed: 7 });
  });

  it('gives byte-identical node data for the same persons and seed, even over an earlier seed', () => {
    expect(digests(a)).toEqual(digests(b));
    for (const node of NODE_IDS) expect(a[node]).toEqual(b[node]);
    expect(JSON.parse(readFileSync(join(dirA, 'seed.json'), 'utf8'))).toEqual({ persons: 500, seed: 7 });
  });

  it('fills every node', () => {
    for (const node of NODE_IDS) expect(a[node].subjects.length, node).toBeGreaterThan(0);
    for (const node of ['politie', 'om', 'reclassering'] as const) expect(a[node].bans.length, node).toBeGreaterThan(0);
    expect(a['veilig-thuis'].bans).toEqual([]);
    expect(a['veilig-thuis'].own_records.every((r) => r.type === 'report')).toBe(true);
    expect(a['veilig-thuis'].own_records.length).toBeGreaterThan(0);
    expect(a.reclassering.own_records.every((r) => r.type === 'supervision')).toBe(true);
    // No more persons than generated.
    const known = new Set(NODE_IDS.flatMap((node) => a[node].subjects.map((s) => s.bsn)));
    expect(known.size).toBeLessThanOrEqual(500);
    expect(known.size).toBeGreaterThan(100);
  });

  it('uses only valid BSNs: subjects, ban subjects, protected persons, own records', () => {
    let checked = 0;
    for (const node of NODE_IDS) {
      const data = a[node];
      const bsns = [
        ...data.subjects.map((s) => s.bsn),
        ...data.bans.flatMap((row) => [row.bsn, ...(JSON.parse(row.body) as Ban).protectedBsns]),
        ...data.own_records.flatMap((row) => [row.bsn, JSON.parse(row.body).bsn as string]),
      ];
      for (const bsn of bsns) {
        checked++;
        if (!isValidBsn(bsn)) expect.fail(`${node} holds an invalid BSN`);
      }
    }
    expect(checked).toBeGreaterThan(500);
  });

  it('stores only records that pass the import schema, keyed consistently', () => {
    for (const node of ['politie', 'om', 'reclassering'] as const) {
      for (const row of a[node].bans) {
        const body = JSON.parse(row.body);
        const parsed = banSchema.safeParse(body);
        if (!parsed.success) expect.fail(`${node} ban ${row.id}: ${parsed.error.issues[0]?.message}`);
        expect(body.id).toBe(row.id);
        expect(body.bsn).toBe(row.bsn);
        // A ban's subject is known to the node that holds it.
        expect(a[node].subjects.some((s) => s.bsn === row.bsn)).toBe(true);
      }
    }
  });

  it('has realistic overlap: some persons are known to several partners, most to one', () => {
    const knownBy = new Map<string, NodeId[]>();
    for (const node of NODE_IDS) for (const { bsn } of a[node].subjects) knownBy.set(bsn, [...(knownBy.get(bsn) ?? []), node]);
    const counts = [...knownBy.values()].map((nodes) => nodes.length);
    const byCount = (n: number) => counts.filter((c) => c === n).length;
    expect(byCount(1)).toBeGreaterThan(byCount(2));
    expect(byCount(2)).toBeGreaterThan(10);
    expect(byCount(3) + byCount(4)).toBeGreaterThan(0);
    // Every pair of partners shares some persons.
    for (const x of NODE_IDS) {
      for (const y of NODE_IDS) {
        if (x >= y) continue;
        const shared = [...knownBy.values()].filter((nodes) => nodes.includes(x) && nodes.includes(y)).length;
        expect(shared, `${x} ∩ ${y}`).toBeGreaterThan(0);
      }
    }
  });

  it('has bans reported by more than one node under one id, describing the same ban', () => {
    const copies = new Map<string, { node: NodeId; ban: Ban }[]>();
    for (const node of NODE_IDS) {
      for (const row of a[node].bans) copies.set(row.id, [...(copies.get(row.id) ?? []), { node, ban: JSON.parse(row.body) }]);
    }
    const shared = [...copies.entries()].filter(([, list]) => list.length > 1);
    expect(shared.length).toBeGreaterThan(5);
    expect(shared.some(([, list]) => list.length === 3)).toBe(true);
    for (const [id, list] of shared) {
      const [first, ...rest] = list;
      for (const other of rest) {
        for (const field of ['bsn', 'kind', 'legalBasis', 'imposedBy', 'validFrom', 'validUntil', 'protectedBsns', 'area'] as const) {
          expect(other.ban[field], `${id} at ${other.node} vs ${first!.node}: ${field}`).toEqual(first!.ban[field]);
        }
      }
    }
  });

  it('has bans of every kind and every status, expired, current and future', () => {
    const bans = NODE_IDS.flatMap((node) => a[node].bans.map((row) => JSON.parse(row.body) as Ban));
    expect(new Set(bans.map((b) => b.kind))).toEqual(new Set(BAN_KINDS));
    expect(new Set(bans.map((b) => b.status))).toEqual(new Set(BAN_STATUSES));
    for (const b of bans) {
      if (b.kind === 'CONTACT') expect(b.area).toBeUndefined();
      else expect(b.area, b.id).toMatchObject({ center: { lat: expect.any(Number), lon: expect.any(Number) }, radiusMeters: expect.any(Number) });
      if (b.status !== 'ACTIVE') expect(b.statusChangedAt, b.id).toBeDefined();
    }
    // Windows are laid around the seed's fixed epoch, so they are the same whenever the seed runs.
    const epoch = Date.parse('2026-11-01T00:00:00Z');
    const expired = bans.filter((b) => b.validUntil != null && Date.parse(b.validUntil) <= epoch);
    const future = bans.filter((b) => Date.parse(b.validFrom) > epoch);
    const current = bans.filter((b) => Date.parse(b.validFrom) <= epoch && (b.validUntil == null || Date.parse(b.validUntil) > epoch));
    expect(expired.length).toBeGreaterThan(0);
    // Not only the ten-day house bans: a court's contact and location bans run out too.
    expect(expired.some((b) => b.kind !== 'HOUSE')).toBe(true);
    expect(future.length).toBeGreaterThan(0);
    expect(current.length).toBeGreaterThan(expired.length);
    expect(bans.some((b) => b.validUntil === null)).toBe(true);
  });

  it('gives different data for a different seed', () => {
    for (const node of NODE_IDS) expect(digest(otherSeed[node]), node).not.toBe(digest(a[node]));
    const bsns = (data: Record<NodeId, NodeStoreRows>) => new Set(NODE_IDS.flatMap((node) => data[node].subjects.map((s) => s.bsn)));
    const seven = bsns(a);
    const eight = bsns(otherSeed);
    const common = [...seven].filter((bsn) => eight.has(bsn)).length;
    expect(common).toBeLessThan(seven.size / 2);
  });

  it('marks the stores of a seed that did not finish, and drops the parameters of those it was replacing', async () => {
    const dir = join(root, 'killed');
    expect((await soh(['seed', '--persons', '300', '--seed', '3'], { SOH_DATA_DIR: dir })).code).toBe(0);
    expect(existsSync(join(dir, 'seed.json'))).toBe(true);
    expect(existsSync(join(dir, 'seed.unfinished'))).toBe(false);
    const child = spawn(process.execPath, [fileURLToPath(new URL('../bin/soh.js', import.meta.url)), 'seed', '--persons', '2000000'], {
      env: { ...process.env, SOH_DATA_DIR: dir },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Killed once it has begun replacing the stores (2,000,000 persons take minutes).
    await vi.waitFor(() => expect(existsSync(join(dir, 'seed.unfinished'))).toBe(true), { timeout: 30_000, interval: 20 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    child.kill('SIGKILL');
    await exited;
    expect(existsSync(join(dir, 'seed.unfinished'))).toBe(true);
    expect(existsSync(join(dir, 'seed.json'))).toBe(false);
  }, 60_000);

  it.each(['many', '0', '-5', '1.5'])('refuses --persons %s with a usage error', async (value) => {
    const result = await soh(['seed', `--persons=${value}`], { SOH_DATA_DIR: join(root, 'c') });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--persons must be a whole number above 0');
  });

  it('refuses more persons than one seed can make distinct, before touching the stores', async () => {
    const result = await soh(['seed', '--persons', '10000001'], { SOH_DATA_DIR: join(root, 'd') });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--persons must be at most 10,000,000');
    expect(existsSync(join(root, 'd'))).toBe(false);
  });
});

describe('soh seed beside running nodes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'soh-seed-running-'));

  beforeAll(async () => {
    const first = await soh(['seed', '--persons', '200', '--seed', '3'], { SOH_DATA_DIR: dir });
    expect(first.code, first.stderr).toBe(0);
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses while a node serves its store, names the node, and leaves every store as it was', async () => {
    const before = digests(readAll(dir));
    const node = await startNodeProcess('om', { SOH_DATA_DIR: dir });
    try {
      const refused = await soh(['seed', '--persons', '200', '--seed', '4'], { SOH_DATA_DIR: dir });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^soh seed: node om is running on the store under .*, or an import into it is under way: stop it or let it finish before seeding/);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(digests(readAll(dir))).toEqual(before);
    } finally {
      await stopNode(node);
    }
    // A node that stops lets go of its store; seeding then goes ahead.
    const after = await soh(['seed', '--persons', '200', '--seed', '4'], { SOH_DATA_DIR: dir });
    expect(after.code, after.stderr).toBe(0);
    expect(digests(readAll(dir))).not.toEqual(before);
  }, 60_000);

  it('goes ahead after a node that was killed outright: the lock ended with its process', async () => {
    const node = await startNodeProcess('om', { SOH_DATA_DIR: dir });
    const exited = new Promise((resolve) => node.process.once('exit', resolve));
    node.process.kill('SIGKILL');
    await exited;
    const result = await soh(['seed', '--persons', '200', '--seed', '5'], { SOH_DATA_DIR: dir });
    expect(result.code, result.stderr).toBe(0);
  }, 60_000);

  it('keeps a node from starting on a store while it is being replaced', async () => {
    const letGo = holdForReplacing('om', join(dir, 'nodes', 'om'), 'seeding');
    try {
      await expect(startNodeProcess('om', { SOH_DATA_DIR: dir })).rejects.toThrow(/the store of node om under .* is being replaced \(soh seed\): start the node when that has finished/);
    } finally {
      letGo();
    }
    const node = await startNodeProcess('om', { SOH_DATA_DIR: dir });
    await stopNode(node);
  }, 60_000);
});
