import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayConfigFromEnv } from '../gateway/config.ts';
import { startGateway } from '../gateway/start.ts';
import { NODES } from '../nodes/registry.ts';
import { nodeConfigFromEnv, startNode } from '../nodes/runtime/start.ts';
import { StoreInUseError } from '../nodes/store/serving.ts';
import { AuditHeadError } from '../lib/audit/writer.ts';
import Database from 'better-sqlite3';

const home = mkdtempSync(join(tmpdir(), 'soh-start-failure-'));
let taken: Server;
let takenPort: number;

beforeAll(async () => {
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  takenPort = (taken.address() as { port: number }).port;
  // Start libuv's thread pool now, so that it does not count as a thread a start left behind.
  await readFile(import.meta.filename);
});
afterAll(async () => {
  await new Promise((resolve) => taken.close(resolve));
  rmSync(home, { recursive: true, force: true });
});

/** Files under the data directory this process still holds open. */
function openDataFiles(): string[] {
  const files: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(home)) files.push(target);
    } catch {
      // The descriptor closed while we looked.
    }
  }
  return files;
}

const threads = () => readdirSync('/proc/self/task').length;

describe.runIf(process.platform === 'linux')('a component whose port is taken', () => {
  it('a node fails with the listen error and leaves no store, audit file or audit thread open', async () => {
    const before = threads();
    const config = nodeConfigFromEnv({ SOH_DATA_DIR: home, SOH_NODE_PORT: String(takenPort) });
    await expect(startNode(NODES.om, config)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(openDataFiles()).toEqual([]);
    expect(threads()).toBe(before);
  });

  it('the gateway fails with the listen error and leaves no audit file or audit thread open', async () => {
    const before = threads();
    const config = gatewayConfigFromEnv({ SOH_DATA_DIR: home, SOH_GATEWAY_PORT: String(takenPort) });
    await expect(startGateway(config)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(openDataFiles()).toEqual([]);
    expect(threads()).toBe(before);
  });

  it('the same data directory starts cleanly afterwards', async () => {
    const node = await startNode(NODES.om, nodeConfigFromEnv({ SOH_DATA_DIR: home, SOH_NODE_PORT: '0' }));
    const health = await fetch(`${node.url}/readyz`);
    expect(health.status).toBe(200);
    await node.close();
    expect(openDataFiles()).toEqual([]);
  });
});

describe('a node on the stores of a seed that did not finish', () => {
  it('refuses to start, naming the seed, and holds nothing open: a half-written store would answer NO_HIT for persons it never got', async () => {
    const dataDir = mkdtempSync(join(home, 'unfinished-'));
    writeFileSync(join(dataDir, 'seed.unfinished'), '');
    const config = nodeConfigFromEnv({ SOH_DATA_DIR: dataDir, SOH_NODE_PORT: '0' });
    const refused = startNode(NODES.politie, config);
    await expect(refused).rejects.toBeInstanceOf(StoreInUseError);
    await expect(refused).rejects.toThrow(/an earlier seed under .* did not finish.*run soh seed first, then start the node/);
    expect(openDataFiles()).toEqual([]);
    rmSync(join(dataDir, 'seed.unfinished'));
    const node = await startNode(NODES.politie, config);
    await node.close();
  });
});

describe('a node whose audit log was cut short while it was stopped', () => {
  it('refuses to start, and holds neither its store nor its audit log open', async () => {
    const dataDir = mkdtempSync(join(home, 'truncated-'));
    const config = nodeConfigFromEnv({ SOH_DATA_DIR: dataDir, SOH_NODE_PORT: '0' });
    const node = await startNode(NODES.om, config);
    // A call without a token: refused, and on record.
    const refused = await fetch(`${node.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' });
    expect(refused.status).toBe(401);
    await node.close();
    const log = new Database(join(dataDir, 'nodes', 'om', 'audit.db'));
    const { n } = log.prepare('SELECT count(*) AS n FROM head').get() as { n: number };
    expect(n).toBe(1);
    log.exec('DELETE FROM head');
    log.close();
    await expect(startNode(NODES.om, config)).rejects.toBeInstanceOf(AuditHeadError);
    expect(openDataFiles()).toEqual([]);
  });
});
