import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AccessFilter, accessTracesQuery } from '../lib/audit/query.ts';
import { AuditWriter } from '../lib/audit/writer.ts';
import { createKeyFile } from '../lib/keys.ts';

// accessLog reads the gateway's log on the event loop: a search that names a trace or a person
// must read the few requests they name, not every request of a purpose or an account beside it.

const dir = mkdtempSync(join(tmpdir(), 'soh-query-plan-'));
let db: Database.Database;

beforeAll(() => {
  // The schema and indexes exactly as the gateway's writer makes them.
  const key = createKeyFile(join(dir, 'keys'), 'gateway');
  new AuditWriter({ file: join(dir, 'audit.db'), key }).close();
  db = new Database(join(dir, 'audit.db'), { readonly: true });
});
afterAll(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const viewer = { org: 'om', partner: 'OM' };
const plan = (filter: AccessFilter) => {
  const { sql, params } = accessTracesQuery(filter, viewer, 26, null);
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((row) => row.detail).join('\n');
};
const window = { from: 0, to: 2e12 };

describe('the access-log search plan', () => {
  it.each<[string, AccessFilter, string]>([
    ['a person and a purpose', { subjectRef: 'ref', purpose: 'vt-hit-check' }, 'records_subject'],
    ['a person and an account', { subjectRef: 'ref', requesterSub: 'u', ...window }, 'records_subject'],
    ['a trace and a purpose', { traceId: '0'.repeat(32), purpose: 'vt-hit-check' }, 'records_trace'],
  ])('reads %s by the narrower index', (_what, filter, index) => {
    const detail = plan(filter);
    expect(detail).toContain(index);
    expect(detail).not.toMatch(/records_purpose|records_requester/);
  });

  it.each<[string, AccessFilter, string]>([
    ['a purpose alone', { purpose: 'vt-hit-check' }, 'records_purpose'],
    ['an account in a window', { requesterSub: 'u', ...window }, 'records_requester'],
  ])('reads %s by its own index', (_what, filter, index) => {
    expect(plan(filter)).toContain(index);
  });
});
