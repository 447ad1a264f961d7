import { existsSync, mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_IDS, type NodeId } from '../lib/partners.ts';
import { NODES } from './registry.ts';
import type { ImportRecord } from './runtime/import-records.ts';
import { createRng } from './runtime/random.ts';
import { seedPopulation } from './runtime/seed.ts';
import { holdForReplacing, nodeHome, unfinishedSeedMarker } from './store/serving.ts';
import { SqliteStore } from './store/sqlite.ts';

export interface SeedOptions {
  dataDir: string;
  persons: number;
  seed: number;
  onProgress?(done: number, total: number): void;
}

export interface SeedSummary {
  persons: number;
  records: Record<NodeId, number>;
  millis: number;
}

const BATCH_PERSONS = 5_000;

export function storeFile(dataDir: string, node: NodeId): string {
  return join(nodeHome(dataDir, node), 'store.db');
}

/** The nodes whose embedded store exists and holds data, seeded or imported. */
export async function storesHoldingData(dataDir: string): Promise<NodeId[]> {
  const holding: NodeId[] = [];
  for (const id of NODE_IDS) {
    if (!existsSync(storeFile(dataDir, id))) continue;
    const store = new SqliteStore(storeFile(dataDir, id));
    const { persons } = await store.count();
    await store.close();
    if (persons > 0) holding.push(id);
  }
  return holding;
}

/**
 * (Re)generates every node's embedded store from one synthetic population: each node receives
 * its own records for the persons it knows and its copies of their bans.
 */
export async function seedAll(options: SeedOptions): Promise<SeedSummary> {
  const letGo: (() => void)[] = [];
  try {
    // No node may serve a store while it is replaced, nor start on one half-written.
    for (const id of NODE_IDS) letGo.push(holdForReplacing(id, nodeHome(options.dataDir, id), 'seeding'));
    return await seedStores(options);
  } finally {
    for (const release of letGo) release();
  }
}

export function seedUnfinished(dataDir: string): boolean {
  return existsSync(unfinishedSeedMarker(dataDir));
}

async function seedStores(options: SeedOptions): Promise<SeedSummary> {
  const started = Date.now();
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(unfinishedSeedMarker(options.dataDir), '');
  // The parameters of the stores being replaced no longer describe them.
  rmSync(join(options.dataDir, 'seed.json'), { force: true });
  const stores = {} as Record<NodeId, SqliteStore>;
  const batches = {} as Record<NodeId, ImportRecord[]>;
  const records = {} as Record<NodeId, number>;
  for (const id of NODE_IDS) {
    const file = storeFile(options.dataDir, id);
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
    mkdirSync(nodeHome(options.dataDir, id), { recursive: true, mode: 0o700 });
    stores[id] = new SqliteStore(file);
    batches[id] = [];
    records[id] = 0;
  }
  const rngs = Object.fromEntries(NODE_IDS.map((id, index) => [id, createRng(options.seed * 31 + index + 1)]));
  const flush = async () => {
    for (const id of NODE_IDS) {
      records[id] += await stores[id].load(batches[id]);
      batches[id] = [];
    }
  };
  let done = 0;
  for (const person of seedPopulation({ persons: options.persons, seed: options.seed })) {
    for (const id of NODE_IDS) batches[id].push(...NODES[id].seed(person, rngs[id]!));
    if (++done % BATCH_PERSONS === 0) {
      await flush();
      options.onProgress?.(done, options.persons);
    }
  }
  await flush();
  options.onProgress?.(done, options.persons);
  for (const id of NODE_IDS) await stores[id].close();
  writeFileSync(join(options.dataDir, 'seed.json'), `${JSON.stringify({ persons: options.persons, seed: options.seed })}\n`);
  rmSync(unfinishedSeedMarker(options.dataDir));
  return { persons: done, records, millis: Date.now() - started };
}

export function seedParameters(dataDir: string): { persons: number; seed: number } | null {
  const file = join(dataDir, 'seed.json');
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null;
}
