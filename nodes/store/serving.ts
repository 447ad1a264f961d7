import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Which processes serve a node's embedded store. A running node keeps serving the file it opened,
 * so a store replaced under it (`soh seed`) would go unseen until it restarts: each node process
 * marks the store's directory with a file named by its pid, and whatever replaces stores asks first.
 */
const MARK = /^node-(\d+)\.pid$/;

export class StoreInUseError extends Error {
  override name = 'StoreInUseError';
}

/** Marks the store under `home` as served by this process; the returned function removes the mark. */
export function markServing(home: string): () => void {
  const file = join(home, `node-${process.pid}.pid`);
  writeFileSync(file, `${process.pid}\n`, { mode: 0o600 });
  return () => rmSync(file, { force: true });
}

/** The living processes that serve the store under `home` (a crashed node's mark is stale, and ignored). */
export function servingPids(home: string): number[] {
  let names: string[];
  try {
    names = readdirSync(home);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const pid = Number(MARK.exec(name)?.[1]);
    return pid > 0 && alive(pid) ? [pid] : [];
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process lives, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Refuses to go on while a node serves the store under `home`. */
export function assertNotServed(nodeId: string, home: string, action: string): void {
  const pids = servingPids(home);
  if (pids.length > 0) {
    throw new StoreInUseError(
      `node ${nodeId} is running (pid ${pids.join(', ')}) on the store under ${home}: stop it before ${action}, or it goes on serving the store it opened`,
    );
  }
}
