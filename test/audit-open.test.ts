import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../lib/audit/log.ts';
import { verifyLog } from '../lib/audit/verify.ts';
import { AuditHeadError } from '../lib/audit/writer.ts';
import { type StoredKey, createKeyFile } from '../lib/keys.ts';
import { nodeAccessRecord } from './support/audit-records.ts';

// A component opens its log only if it ends where the signed head says. Were it to go on from a
// log cut short while it was stopped, its next commit would sign the shortened chain, and `soh
// audit verify` would pass with the removed records gone without a trace.

const dir = mkdtempSync(join(tmpdir(), 'soh-audit-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stopped component's log of `records` records, with the key it signs with. */
async function stoppedLog(name: string, records: number): Promise<{ file: string; keysDir: string; key: StoredKey }> {
  const file = join(dir, name, 'audit.db');
  const keysDir = join(dir, name, 'keys');
  const key = createKeyFile(keysDir, name);
  const log = new AuditLog(file, key, { search: 'traces' });
  await log.appendAll(Array.from({ length: records }, (_, i) => nodeAccessRecord(i + 1)));
  await log.close();
  return { file, keysDir, key };
}

function alter(file: string, sql: string): void {
  const db = new Database(file, { fileMustExist: true });
  db.exec(sql);
  db.close();
}

const verified = (name: string, file: string, keysDir: string) => verifyLog({ component: name, file, keysDir });

describe('opening an audit log', () => {
  it('goes on from the signed head after a normal close and reopen, and the chain verifies', async () => {
    const { file, keysDir, key } = await stoppedLog('reopened', 3);
    const log = new AuditLog(file, key, { search: 'traces' });
    await log.append(nodeAccessRecord(4));
    await log.close();
    expect(verified('reopened', file, keysDir)).toEqual({ component: 'reopened', records: 4, headSeq: 4, firstBreak: null });
  });

  it('refuses a log whose tail was cut off while it was stopped, and leaves the file as it found it', async () => {
    const { file, keysDir, key } = await stoppedLog('truncated', 6);
    alter(file, 'DELETE FROM records WHERE seq > 3');
    const before = readFileSync(file);
    const refusal = (() => {
      try {
        new AuditLog(file, key, { search: 'traces' });
      } catch (error) {
        return error as Error;
      }
    })();
    expect(refusal).toBeInstanceOf(AuditHeadError);
    expect(refusal!.message).toContain(file);
    expect(refusal!.message).toContain('chain truncated: head names seq 6, last record is 3');
    // The error names what is wrong, never what a record holds.
    for (const content of [nodeAccessRecord(3).trace_id, 'medewerker-1', 'vt-hit-check']) expect(refusal!.message).not.toContain(content);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(verified('truncated', file, keysDir).firstBreak).toEqual({ seq: 4, reason: 'chain truncated: head names seq 6, last record is 3' });
  });

  it.each([
    ['its head removed', 'DELETE FROM head', /no signed head for a non-empty chain/],
    ['every record removed', 'DELETE FROM records', /chain truncated: head names seq 4, last record is 0/],
    ['its last record removed and its head moved back', "DELETE FROM records WHERE seq = 4; UPDATE head SET seq = 3, hash = (SELECT body ->> '$.hash' FROM records WHERE seq = 3)", /head signature does not verify/],
  ])('refuses a log with %s', async (_what, sql, reason) => {
    const { file, key } = await stoppedLog(`altered-${_what.replaceAll(' ', '-')}`, 4);
    alter(file, sql);
    expect(() => new AuditLog(file, key, { search: 'traces' })).toThrow(reason);
  });

  it('refuses a log whose head another key signed, naming both keys', async () => {
    const { file } = await stoppedLog('other-key', 2);
    const other = createKeyFile(join(dir, 'other-key', 'other-keys'), 'other');
    expect(() => new AuditLog(file, other, { search: 'traces' })).toThrow(/its head is signed by key other-key-\S+, which this component does not hold \(other-\S+\)/);
  });

  it('goes on from a head signed by a key the component still holds, after a rotation', async () => {
    const { file, keysDir, key } = await stoppedLog('rotated', 2);
    const newer = createKeyFile(keysDir, 'rotated');
    const log = new AuditLog(file, newer, { search: 'traces', heldKeys: [newer, key] });
    await log.append(nodeAccessRecord(3));
    await log.close();
    expect(verified('rotated', file, keysDir)).toMatchObject({ records: 3, headSeq: 3, firstBreak: null });
  });

  it('opens a brand-new log, with no records and no head', async () => {
    const file = join(dir, 'new', 'audit.db');
    const keysDir = join(dir, 'new', 'keys');
    const log = new AuditLog(file, createKeyFile(keysDir, 'new'), { search: 'traces' });
    await log.append(nodeAccessRecord(1));
    await log.close();
    expect(verified('new', file, keysDir).firstBreak).toBeNull();
  });
});
