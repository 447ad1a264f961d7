import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../nodes/store/sqlite.ts';

// The embedded store answers the node's lookups the way PostgresStore does (test/store-postgres.test.ts).
const dir = mkdtempSync(join(tmpdir(), 'soh-sqlite-store-'));
const store = new SqliteStore(join(dir, 'store.db'));
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const [KNOWN, BANNED, UNKNOWN] = ['123456782', '111222333', '240000017'];
const contact = { organisation: 'Politie', unit: 'Eenheid Rotterdam', phone: '0900-8844' };
const ban = {
  type: 'ban' as const,
  id: 'PN-1',
  bsn: BANNED,
  kind: 'CONTACT' as const,
  legalBasis: 'art. 38v Sr',
  imposedBy: 'Rechtbank Rotterdam',
  status: 'ACTIVE' as const,
  validFrom: '2025-01-01T00:00:00Z',
  protectedBsns: [KNOWN],
  electronicMonitoring: false,
  victimDevice: false,
};

describe('SqliteStore', () => {
  it('answers one entry per BSN, in order, with contacts and bans', async () => {
    await store.load([{ type: 'person', bsn: KNOWN, contact }, ban]);
    const { type: _type, ...stored } = ban;
    expect(await store.lookup([UNKNOWN, BANNED, KNOWN])).toEqual([null, { contact: null, bans: [stored] }, { contact, bans: [] }]);
  });

  it('reads no bans when the caller does not ask for them, and still knows the subject', async () => {
    expect(await store.lookup([BANNED, UNKNOWN], { withBans: false })).toEqual([{ contact: null, bans: [] }, null]);
  });
});
