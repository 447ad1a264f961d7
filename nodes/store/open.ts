import { join } from 'node:path';
import { SqliteStore } from './sqlite.ts';
import type { NodeStore } from './store.ts';

/** The embedded store by default; PostgreSQL when a database URL is configured. */
export async function openStore(nodeId: string, home: string, databaseUrl?: string): Promise<NodeStore> {
  if (databaseUrl) {
    const { PostgresStore } = await import('./postgres.ts');
    return PostgresStore.connect(databaseUrl, nodeId);
  }
  return new SqliteStore(join(home, 'store.db'));
}
