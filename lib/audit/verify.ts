import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadKeys } from '../keys.ts';
import { type ChainBreak, type ChainedRecord, ChainVerifier } from './chain.ts';
import { openAuditReader, readHead } from './log.ts';

export interface ComponentLog {
  component: string;
  file: string;
  keysDir: string;
}

export interface VerifyReport {
  component: string;
  records: number;
  headSeq: number | null;
  firstBreak: ChainBreak | null;
}

/** Every component's audit log under the data directory: the gateway and each node present. */
export function componentLogs(dataDir: string): ComponentLog[] {
  const logs: ComponentLog[] = [];
  const gatewayFile = join(dataDir, 'gateway', 'audit.db');
  if (existsSync(gatewayFile)) logs.push({ component: 'gateway', file: gatewayFile, keysDir: join(dataDir, 'gateway', 'keys') });
  const nodesDir = join(dataDir, 'nodes');
  if (existsSync(nodesDir)) {
    for (const node of readdirSync(nodesDir).sort()) {
      const file = join(nodesDir, node, 'audit.db');
      if (existsSync(file)) logs.push({ component: node, file, keysDir: join(nodesDir, node, 'keys') });
    }
  }
  return logs;
}

/**
 * Re-checks one chain from its first record: each record's position, link and hash, then the
 * signed head against the chain's end (which catches truncation).
 */
export function verifyLog(log: ComponentLog): VerifyReport {
  const db = openAuditReader(log.file);
  try {
    const verifier = new ChainVerifier();
    let position = 0;
    for (const row of db.prepare('SELECT seq, body FROM records ORDER BY seq').iterate() as Iterable<{ seq: number; body: string }>) {
      position++;
      let record: ChainedRecord;
      try {
        record = JSON.parse(row.body) as ChainedRecord;
      } catch {
        verifier.firstBreak ??= { seq: row.seq, reason: 'record is not valid JSON' };
        continue;
      }
      if (record.seq !== row.seq && !verifier.firstBreak) {
        verifier.firstBreak = { seq: row.seq, reason: `record stored as seq ${row.seq} says seq ${record.seq} (reordered)` };
      }
      verifier.push(record);
    }
    const head = readHead(db);
    const key = head ? loadKeys(log.keysDir).find((candidate) => candidate.kid === head.kid) : undefined;
    const firstBreak = verifier.finish(head, key?.publicKey ?? null);
    return { component: log.component, records: position, headSeq: head?.seq ?? null, firstBreak };
  } finally {
    db.close();
  }
}
