import type Database from 'better-sqlite3';
import { type ChainedRecord, ZERO_HASH, recordHash } from './chain.ts';
import type { AuditRecord, ProcessingRecord } from './records.ts';
import { writtenAsIs } from './writer.ts';

export type StoredRecord = AuditRecord & ChainedRecord;

/**
 * Reads audit records for privacy officers. Each record comes with `chainValid`: its own hash
 * verifies and it links to a predecessor whose hash verifies too. Full-chain checks are
 * `soh audit verify`'s job; this is the per-record evidence shown next to each entry.
 */
export class AuditReader {
  private readonly byTrace: Database.Statement<[string], { body: string }>;
  private readonly bySeq: Database.Statement<[number], { body: string }>;

  constructor(private readonly db: Database.Database) {
    this.byTrace = db.prepare('SELECT body FROM records WHERE trace_id = ? ORDER BY seq');
    this.bySeq = db.prepare('SELECT body FROM records WHERE seq = ?');
  }

  recordsOfTrace(traceId: string): { record: StoredRecord; chainValid: boolean }[] {
    return this.byTrace.all(traceId).map((row) => {
      const record = JSON.parse(row.body) as StoredRecord;
      return { record, chainValid: writtenAsIs(row.body, record) && this.linkValid(record) };
    });
  }

  private linkValid(record: StoredRecord): boolean {
    if (recordHash(record) !== record.hash) return false;
    if (record.seq === 1) return record.prevHash === ZERO_HASH;
    const previousRow = this.bySeq.get(record.seq - 1);
    if (!previousRow) return false;
    const previous = JSON.parse(previousRow.body) as StoredRecord;
    return previous.hash === record.prevHash && recordHash(previous) === previous.hash && writtenAsIs(previousRow.body, previous);
  }

  /**
   * Access records matching one filter, newest first, keyset-paged by seq, that an officer may
   * see (DESIGN §7): their organisation asked, or provided data for the request (`confirmed`). Also
   * listed, unconfirmed, are requests their organisation's node was sent but did not answer in
   * time (status UNAVAILABLE, not `reached: false`): only that node's own records can tell
   * whether it still found the person or released data.
   */
  accessTraces(
    filter: AccessFilter,
    viewer: { org: string; partner: string | null },
    limit: number,
    beforeSeq: number | null,
  ): { seq: number; traceId: string; confirmed: boolean }[] {
    const { sql, params } = accessTracesQuery(filter, viewer, limit, beforeSeq);
    const rows = this.db.prepare(sql).all(...params) as { seq: number; traceId: string; confirmed: 0 | 1 }[];
    return rows.map((row) => ({ seq: row.seq, traceId: row.traceId, confirmed: row.confirmed === 1 }));
  }

  accessRecord(seq: number): StoredRecord | null {
    const row = this.bySeq.get(seq);
    return row ? (JSON.parse(row.body) as StoredRecord) : null;
  }
}

export interface AccessFilter {
  traceId?: string;
  subjectRef?: string;
  purpose?: string;
  requesterSub?: string;
  from?: number;
  to?: number;
}

/**
 * A processing record as `accessLog` shows it (`ProcessingRecord` in schemas/gateway.graphql), the same at the
 * gateway and at every node: times as RFC 3339, and whether the record's chain link verified.
 */
export function processingRecordView(record: ProcessingRecord, chainValid: boolean) {
  return {
    component: record.resource.component,
    name: record.name,
    traceId: record.trace_id,
    spanId: record.span_id,
    parentSpanId: record.parent_span_id,
    startTime: new Date(record.start_time).toISOString(),
    endTime: new Date(record.end_time).toISOString(),
    statusCode: record.status_code,
    attributes: record.attributes,
    chainValid,
  };
}

/** The statement behind AuditReader.accessTraces, and its parameters in order. */
export function accessTracesQuery(
  filter: AccessFilter,
  viewer: { org: string; partner: string | null },
  limit: number,
  beforeSeq: number | null,
): { sql: string; params: (string | number)[] } {
  const confirmed = "(requester_org = ? OR EXISTS (SELECT 1 FROM json_each(body, '$.providers') WHERE value = ?))";
  const unanswered =
    "EXISTS (SELECT 1 FROM json_each(body, '$.partners') WHERE value ->> '$.partner' = ? AND value ->> '$.status' = 'UNAVAILABLE' AND value ->> '$.reached' IS NOT 0)";
  const viewerParams = [viewer.org, viewer.partner ?? ''];
  const where: string[] = ["kind = 'access'", `(${confirmed} OR ${unanswered})`];
  const params: (string | number)[] = [...viewerParams, viewer.partner ?? ''];
  // A trace or a person names a few requests: with either, a purpose or requester must not lead
  // the planner to their index, which holds every request of that purpose or account (a unary
  // `+` keeps a column out of index use).
  const byIndex = (column: string) => (filter.traceId || filter.subjectRef ? `+${column}` : column);
  if (filter.traceId) {
    where.push('trace_id = ?');
    params.push(filter.traceId);
  }
  if (filter.subjectRef) {
    where.push('trace_id IN (SELECT trace_id FROM records WHERE subject_ref = ?)');
    params.push(filter.subjectRef);
  }
  if (filter.purpose) {
    where.push(`${byIndex('purpose')} = ?`);
    params.push(filter.purpose);
  }
  if (filter.requesterSub) {
    where.push(`${byIndex('requester_sub')} = ?`);
    params.push(filter.requesterSub);
  }
  if (filter.from !== undefined) {
    where.push('time >= ?');
    params.push(filter.from);
  }
  if (filter.to !== undefined) {
    where.push('time < ?');
    params.push(filter.to);
  }
  if (beforeSeq !== null) {
    where.push('seq < ?');
    params.push(beforeSeq);
  }
  return {
    sql: `SELECT seq, trace_id AS traceId, ${confirmed} AS confirmed FROM records WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`,
    params: [...viewerParams, ...params, limit],
  };
}
