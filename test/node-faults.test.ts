import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAuditReader } from '../lib/audit/log.ts';
import { PERSONS } from './support/fixtures.ts';
import { type Federation, startFederation } from './support/federation.ts';
import { nodeAuditFile } from './support/node-calls.ts';

const HIT_CHECK = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { subjectRef complete anyHit partners { partner status } } }`;

/** The records of one trace in a node's audit log, in chain order. */
function recordsOfTrace(file: string, traceId: string): any[] {
  const db = openAuditReader(file);
  try {
    return (db.prepare('SELECT body FROM records WHERE trace_id = ? ORDER BY seq').all(traceId) as { body: string }[]).map((row) => JSON.parse(row.body));
  } finally {
    db.close();
  }
}

function lastAccessTrace(file: string): string {
  const db = openAuditReader(file);
  try {
    return (db.prepare("SELECT trace_id FROM records WHERE kind = 'access' ORDER BY seq DESC LIMIT 1").get() as { trace_id: string }).trace_id;
  } finally {
    db.close();
  }
}

describe('a node whose store fails', () => {
  let federation: Federation;
  let vtToken: string;

  beforeAll(async () => {
    federation = await startFederation({ deadlineMs: 3_000 });
    vtToken = await federation.issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1' });
    // A real internal fault under the running node: its store loses the table every lookup reads.
    const store = new Database(join(federation.dataDir, 'nodes', 'politie', 'store.db'));
    store.exec('DROP TABLE subjects');
    store.close();
  });
  afterAll(() => federation?.stop());

  it('is UNAVAILABLE in the answer while the other partners still answer', async () => {
    const { status, body } = await federation.query(vtToken, HIT_CHECK, { bsn: PERSONS.subject });
    expect(status).toBe(200);
    const byPartner = Object.fromEntries(body.data!.hitCheck.partners.map((p: any) => [p.partner, p.status]));
    expect(byPartner).toEqual({ POLITIE: 'UNAVAILABLE', VEILIG_THUIS: 'HIT', OM: 'HIT', RECLASSERING: 'HIT' });
    expect(body.data!.hitCheck).toMatchObject({ complete: false, anyHit: true });
    expect(body.errors?.map((error) => error.extensions?.['code'])).toEqual(['PARTNER_UNAVAILABLE']);
  });

  it('still writes a processing record with status ERROR for the subject it was asked about, beside its access record', async () => {
    const { body } = await federation.query(vtToken, HIT_CHECK, { bsn: PERSONS.subject });
    const subjectRef = body.data!.hitCheck.subjectRef;
    const file = nodeAuditFile(federation.dataDir, 'politie');
    const records = recordsOfTrace(file, lastAccessTrace(file));
    const access = records.filter((record) => record.type === 'access');
    const processing = records.filter((record) => record.type === 'processing');
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ decision: 'DENY:INTERNAL', fieldsReleased: [], subjects: 1, hits: 0 });
    expect(processing).toHaveLength(1);
    expect(processing[0]).toMatchObject({
      name: 'node.records',
      status_code: 'ERROR',
      attributes: { 'dpl.core.data_subject_id': subjectRef, 'soh.outcome': 'UNAVAILABLE', 'soh.fields_released': [] },
    });
    expect(JSON.stringify(records)).not.toContain(PERSONS.subject);
  });

  it('keeps writing UNSET processing records at the nodes whose stores work', async () => {
    const { body } = await federation.query(vtToken, HIT_CHECK, { bsn: PERSONS.subject });
    const file = nodeAuditFile(federation.dataDir, 'om');
    const processing = recordsOfTrace(file, lastAccessTrace(file)).filter((record) => record.type === 'processing');
    expect(processing).toEqual([
      expect.objectContaining({ status_code: 'UNSET', attributes: expect.objectContaining({ 'dpl.core.data_subject_id': body.data!.hitCheck.subjectRef, 'soh.outcome': 'HIT' }) }),
    ]);
  });
});
