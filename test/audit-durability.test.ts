import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditLog, AuditWriteError } from '../lib/audit/log.ts';
import { createKeyFile } from '../lib/keys.ts';
import { nodeAccessRecord } from './support/audit-records.ts';

// The log commits on the event loop into the page cache and acknowledges an append only after an
// fdatasync of its WAL has returned. Here fdatasync is held back or made to fail, to show both.
const sync = vi.hoisted(() => ({ held: [] as ((error: Error | null) => void)[], hold: false, fail: false, calls: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return {
    ...fs,
    fdatasync(fd: number, callback: (error: Error | null) => void) {
      sync.calls++;
      if (sync.fail) return setImmediate(() => callback(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
      if (sync.hold) return sync.held.push((error) => (error ? callback(error) : fs.fdatasync(fd, callback)));
      fs.fdatasync(fd, callback);
    },
  };
});

const dir = mkdtempSync(join(tmpdir(), 'soh-durability-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => Object.assign(sync, { held: [], hold: false, fail: false, calls: 0 }));


const settled = async (promise: Promise<void>, ms = 50) => {
  let state = 'pending';
  promise.then(() => (state = 'resolved'), () => (state = 'rejected'));
  await new Promise((resolve) => setTimeout(resolve, ms));
  return state;
};

const storedSeqs = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT seq FROM records ORDER BY seq').all() as { seq: number }[]).map((row) => row.seq);
  } finally {
    db.close();
  }
};

describe('audit log durability', () => {
  it('acknowledges an append only once the fdatasync after its commit has returned', async () => {
    const file = join(dir, 'held.db');
    const log = new AuditLog(file, createKeyFile(join(dir, 'keys-held'), 'test'), { search: 'traces' });
    try {
      sync.hold = true;
      const first = log.append(nodeAccessRecord(1));
      expect(await settled(first)).toBe('pending');
      // Committed, readable, but not yet acknowledged: the answer it describes still waits.
      expect(storedSeqs(file)).toEqual([1]);
      expect(sync.held).toHaveLength(1);
      // Appends committed while that fdatasync runs wait for the next one, together.
      const second = log.append(nodeAccessRecord(2));
      const third = log.append(nodeAccessRecord(3));
      expect(await settled(second)).toBe('pending');
      sync.held.shift()!(null);
      await first;
      expect(await settled(third)).toBe('pending');
      expect(sync.held).toHaveLength(1);
      sync.hold = false;
      sync.held.shift()!(null);
      await Promise.all([second, third]);
      expect(sync.calls).toBe(2);
      expect(log.healthy).toBe(true);
    } finally {
      await log.close();
    }
    expect(storedSeqs(file)).toEqual([1, 2, 3]);
  });

  it('fails an append closed when fdatasync fails, and every later append too: the page cache can no longer be trusted', async () => {
    const file = join(dir, 'failing.db');
    const log = new AuditLog(file, createKeyFile(join(dir, 'keys-failing'), 'test'), { search: 'traces' });
    try {
      await log.append(nodeAccessRecord(1));
      sync.fail = true;
      await expect(log.append(nodeAccessRecord(2))).rejects.toBeInstanceOf(AuditWriteError);
      expect(log.healthy).toBe(false);
      sync.fail = false;
      await expect(log.append(nodeAccessRecord(3))).rejects.toBeInstanceOf(AuditWriteError);
      expect(log.healthy).toBe(false);
    } finally {
      await log.close();
    }
  });

  it('writes no record queued before an fdatasync failed and committed after it: its answer says nothing was released', async () => {
    const file = join(dir, 'failed-then-queued.db');
    const log = new AuditLog(file, createKeyFile(join(dir, 'keys-failed-then-queued'), 'test'), { search: 'traces' });
    try {
      await log.append(nodeAccessRecord(1));
      sync.hold = true;
      const second = log.append(nodeAccessRecord(2));
      expect(await settled(second)).toBe('pending');
      // Appended while that fdatasync is under way; committed on the next turn, after it has failed.
      const third = log.append(nodeAccessRecord(3));
      sync.held.shift()!(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      await expect(second).rejects.toBeInstanceOf(AuditWriteError);
      await expect(third).rejects.toBeInstanceOf(AuditWriteError);
      expect(storedSeqs(file)).not.toContain(3);
    } finally {
      sync.hold = false;
      await log.close();
    }
  });

  it.each([
    ['removed', (file: string) => ['', '-wal', '-shm'].forEach((suffix) => rmSync(`${file}${suffix}`, { force: true }))],
    ['replaced by a copy', (file: string) => ['', '-wal'].forEach((suffix) => {
      copyFileSync(`${file}${suffix}`, `${file}${suffix}.copy`);
      renameSync(`${file}${suffix}.copy`, `${file}${suffix}`);
    })],
  ])('fails every append closed once its files are %s: a commit into files nobody can read is no record', async (_how, tamper) => {
    const file = join(dir, `gone-${_how.replace(/ /g, '-')}.db`);
    const log = new AuditLog(file, createKeyFile(join(dir, `keys-gone-${_how.replace(/ /g, '-')}`), 'test'), { search: 'traces' });
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      await log.append(nodeAccessRecord(1));
      expect(log.healthy).toBe(true);
      tamper(file);
      await expect(log.append(nodeAccessRecord(2))).rejects.toBeInstanceOf(AuditWriteError);
      expect(log.healthy).toBe(false);
      await expect(log.append(nodeAccessRecord(3))).rejects.toBeInstanceOf(AuditWriteError);
      // Said once; the checkpoint thread may also say that it stopped, when the files went before it opened them.
      expect(stderr.mock.calls.filter(([line]) => String(line).includes('removed or replaced'))).toHaveLength(1);
    } finally {
      stderr.mockRestore();
      await log.close();
    }
  });

  it('fails every append closed once an fdatasync has not returned within its bound: a hung disk must not hold every answer', async () => {
    const file = join(dir, 'hung.db');
    const log = new AuditLog(file, createKeyFile(join(dir, 'keys-hung'), 'test'), { search: 'traces', syncTimeoutMs: 100 });
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      await log.append(nodeAccessRecord(1));
      sync.hold = true;
      const hung = log.append(nodeAccessRecord(2));
      expect(await settled(hung)).toBe('pending');
      // Committed while that fdatasync hangs: it waits for the next round, which never starts.
      const during = log.append(nodeAccessRecord(3));
      expect(await settled(during, 250)).toBe('rejected');
      await expect(hung).rejects.toBeInstanceOf(AuditWriteError);
      await expect(during).rejects.toBeInstanceOf(AuditWriteError);
      expect(log.healthy).toBe(false);
      expect(stderr.mock.calls.filter(([line]) => String(line).includes('has not returned after 100 ms'))).toHaveLength(1);
      // The disk answers at last: that settles nothing, and the log stays failed.
      sync.hold = false;
      sync.held.shift()!(null);
      await expect(log.append(nodeAccessRecord(4))).rejects.toBeInstanceOf(AuditWriteError);
      expect(log.healthy).toBe(false);
      expect(sync.calls).toBe(2);
    } finally {
      stderr.mockRestore();
      sync.hold = false;
      for (const release of sync.held.splice(0)) release(null);
      await log.close();
    }
  });

  it('close() waits until what was appended is durable', async () => {
    const file = join(dir, 'closing.db');
    const log = new AuditLog(file, createKeyFile(join(dir, 'keys-closing'), 'test'), { search: 'traces' });
    sync.hold = true;
    const appended = log.append(nodeAccessRecord(1));
    const closing = log.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await settled(closing)).toBe('pending');
    sync.hold = false;
    sync.held.shift()!(null);
    await Promise.all([appended, closing]);
    expect(storedSeqs(file)).toEqual([1]);
    await expect(log.append(nodeAccessRecord(2))).rejects.toBeInstanceOf(AuditWriteError);
  });

  it('stays unready once its storage quota is reached, although a small commit may still fit', async () => {
    const file = join(dir, 'full.db');
    const log = new AuditLog(file, createKeyFile(join(dir, 'keys-full'), 'test'), { search: 'traces', maxBytes: 64 * 1024 });
    try {
      let index = 0;
      const batch = (size: number) => Array.from({ length: size }, () => nodeAccessRecord(++index));
      let refused = false;
      const outcome = (append: Promise<void>) => append.then(() => 'written', () => 'refused');
      for (let round = 0; round < 200 && !refused; round++) refused = (await outcome(log.appendAll(batch(20)))) === 'refused';
      expect(refused, 'the quota is reached').toBe(true);
      expect(log.healthy).toBe(false);
      // What is left of the last page may still take a record or two: answered, yet never ready again.
      let fitted = false;
      for (let round = 0; round < 20 && !fitted; round++) fitted = (await outcome(log.append(nodeAccessRecord(++index)))) === 'written';
      expect(fitted, 'a single record still fits').toBe(true);
      expect(log.healthy).toBe(false);
    } finally {
      await log.close();
    }
  });
});
