import { existsSync, readdirSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { join } from 'node:path';
import { loadKeys } from '../keys.ts';
import { type ChainBreak, type ChainedRecord, ChainVerifier } from './chain.ts';
import { openAuditReader, readHead } from './log.ts';
import type { AuditRecord } from './records.ts';
import { searchColumns, writtenAsIs } from './writer.ts';

export interface ComponentLog {
  component: string;
  file: string;
  keysDir: string;
}

/** A stored record as read back: its search columns and its body. */
type StoredRow = ReturnType<typeof searchColumns> & { body: string };

export interface VerifyReport {
  component: string;
  records: number;
  headSeq: number | null;
  firstBreak: ChainBreak | null;
}

/**
 * Every component's audit log under the data directory: the gateway and each node that has a log
 * or has keys. A component creates its keys when it first starts, just before its log, so keys
 * without a log mean a log that was deleted: it is listed, and reported as a break.
 */
export function componentLogs(dataDir: string): ComponentLog[] {
  const homes: [string, string][] = [['gateway', join(dataDir, 'gateway')]];
  const nodesDir = join(dataDir, 'nodes');
  if (existsSync(nodesDir)) for (const node of readdirSync(nodesDir).sort()) homes.push([node, join(nodesDir, node)]);
  return homes
    .map(([component, home]) => ({ component, file: join(home, 'audit.db'), keysDir: join(home, 'keys') }))
    .filter((log) => existsSync(log.file) || existsSync(log.keysDir));
}

/**
 * Re-checks one chain from its first record: each record's position, link and hash, the columns
 * it is searched by, then the signed head against the chain's end (which catches truncation).
 * Records and head are read in one transaction, so a component that goes on writing while it is
 * verified is seen as it was at one moment, never as a head past the records read.
 */
export function verifyLog(log: ComponentLog): VerifyReport {
  if (!existsSync(log.file)) return { component: log.component, records: 0, headSeq: null, firstBreak: { seq: 1, reason: 'the audit log is missing, though the component has keys (deleted, or never opened)' } };
  try {
    return verifyReadableLog(log);
  } catch (error) {
    // Overwritten, emptied or cut short: a break to name, not a crash that leaves the other logs unchecked.
    const code = (error as { code?: string }).code;
    return { component: log.component, records: 0, headSeq: null, firstBreak: { seq: 1, reason: `the audit log cannot be read as one (${code ?? (error as Error).message})` } };
  }
}

function verifyReadableLog(log: ComponentLog): VerifyReport {
  const db = openAuditReader(log.file);
  try {
    return db.transaction(() => {
      const verifier = new ChainVerifier();
      let position = 0;
      for (const row of db.prepare('SELECT * FROM records ORDER BY seq').iterate() as Iterable<StoredRow>) {
        position++;
        let record: ChainedRecord;
        try {
          record = JSON.parse(row.body) as ChainedRecord;
        } catch {
          verifier.firstBreak ??= { seq: row.seq, reason: 'record is not valid JSON' };
          continue;
        }
        if (typeof record !== 'object' || record === null || Array.isArray(record)) {
          verifier.firstBreak ??= { seq: row.seq, reason: 'record is not a JSON object' };
          continue;
        }
        // Searches read the stored text with SQLite's JSON functions, where the first of two equal
        // keys counts; the hash is over what JSON.parse keeps, the last. Text that is not exactly
        // the record as written could show one thing to a search and another to the chain.
        if (!verifier.firstBreak && !writtenAsIs(row.body, record)) {
          verifier.firstBreak = { seq: row.seq, reason: 'the stored text is not the record as written (a key repeated, or reformatted)' };
        }
        if (record.seq !== row.seq && !verifier.firstBreak) {
          verifier.firstBreak = { seq: row.seq, reason: `record stored as seq ${row.seq} says seq ${record.seq} (reordered)` };
        }
        verifier.push(record);
        const edited = verifier.firstBreak ? undefined : editedColumn(row, record);
        if (edited) verifier.firstBreak = { seq: row.seq, reason: `the ${edited} column differs from the record (edited)` };
      }
      // Searches go through indexes the chain does not cover: one edited to leave out a row would
      // hide the record from a search while every record still verifies.
      const damage = verifier.firstBreak ? null : indexDamage(db);
      if (damage) verifier.firstBreak = { seq: 1, reason: `the database's indexes do not match its records (${damage})` };
      const head = readHead(db);
      const key = head ? loadKeys(log.keysDir).find((candidate) => candidate.kid === head.kid) : undefined;
      const firstBreak = verifier.finish(head, key?.publicKey ?? null);
      return { component: log.component, records: position, headSeq: head?.seq ?? null, firstBreak };
    })();
  } finally {
    db.close();
  }
}

/** The first search column whose stored value is not the one the record itself gives. */
function editedColumn(row: StoredRow, record: ChainedRecord): string | undefined {
  const expected = searchColumns(record as ChainedRecord & AuditRecord);
  return (Object.keys(expected) as (keyof typeof expected)[]).find((column) => row[column] !== expected[column]);
}

/** The first thing SQLite's integrity check finds wrong, on one line; null when nothing. */
function indexDamage(db: Database.Database): string | null {
  const [first] = db.pragma('integrity_check(1)') as { integrity_check: string }[];
  if (!first || first.integrity_check === 'ok') return null;
  return first.integrity_check.split('\n').filter((line) => !line.startsWith('***')).join('; ');
}
