import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataDir } from '../lib/config.ts';
import { isNodeId, NODE_IDS } from '../lib/partners.ts';
import { NODES } from '../nodes/registry.ts';
import { parseNdjson } from '../nodes/runtime/import-records.ts';
import { nodeDatabaseUrl } from '../nodes/runtime/start.ts';
import { openStore } from '../nodes/store/open.ts';
import { StoreInUseError, holdServing, nodeHome } from '../nodes/store/serving.ts';
import { UsageError } from './usage.ts';

/** `soh import <node> FILE.ndjson`: all-or-nothing; every bad line is named with its number and reason. */
export async function run(args: string[]): Promise<number> {
  const [id, file] = args;
  if (!id || !file || args.length !== 2) throw new UsageError(`soh import <${NODE_IDS.join('|')}> FILE.ndjson`);
  if (!isNodeId(id)) throw new UsageError(`unknown node "${id}" (one of ${NODE_IDS.join(', ')})`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    console.error(`soh import: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    return 1;
  }
  const { records, problems } = parseNdjson(text, NODES[id]);
  if (problems.length > 0) {
    for (const problem of problems) console.error(`${file}:${problem.line}: ${problem.reason}`);
    console.error(`soh import: ${problems.length} bad line(s); nothing was loaded into ${id}`);
    return 1;
  }
  const home = nodeHome(dataDir(), id);
  const databaseUrl = nodeDatabaseUrl();
  // The embedded store is held against `soh seed`, which would replace the file under the import,
  // and refused after a seed that did not finish, which the next `soh up` seeds over.
  let letGo = () => {};
  if (!databaseUrl) {
    try {
      letGo = holdServing(dataDir(), id, 'import');
    } catch (error) {
      if (!(error instanceof StoreInUseError)) throw error;
      console.error(`soh import: ${error.message}; nothing was loaded into ${id}`);
      return 1;
    }
  }
  const store = await openStore(id, home, databaseUrl).catch((error: unknown) => {
    letGo();
    throw error;
  });
  try {
    const count = await store.load(records);
    // Which store: `soh up` serves the embedded ones whatever SOH_NODE_DATABASE_URL says, so an
    // import into PostgreSQL would not show there. The URL itself may hold a password.
    console.log(`loaded ${count} record(s) into ${id} (${databaseUrl ? 'PostgreSQL, SOH_NODE_DATABASE_URL' : join(home, 'store.db')})`);
  } finally {
    await store.close();
    letGo();
  }
  return 0;
}
