import { openAuditReader } from '../../lib/audit/log.ts';
import { AuditReader, processingRecordView } from '../../lib/audit/query.ts';
import type { ProcessingRecord } from '../../lib/audit/records.ts';
import { sohError } from '../../lib/errors.ts';
import type { NodeContext, NodeDependencies } from './server.ts';

const TRACE_ID = /^[0-9a-f]{32}$/;

/**
 * `processingRecords`: this node's own processing records of the given traces, for the gateway's
 * accessLog (purpose privacy-audit). Records carry subject references only, never a BSN.
 */
export function createProcessingRecordsResolver(deps: NodeDependencies) {
  let reader: AuditReader | null = null;
  return (_root: unknown, args: { traceIds: string[] }, _context: NodeContext) => {
    if (args.traceIds.length > 1000 || !args.traceIds.every((id) => TRACE_ID.test(id))) {
      throw sohError('BAD_USER_INPUT', 'traceIds must be at most 1000 W3C trace ids (32 lower-case hex).');
    }
    reader ??= new AuditReader(openAuditReader(deps.auditFile));
    return args.traceIds.flatMap((traceId) => {
      const entries = reader!.recordsOfTrace(traceId);
      const provided = entries.some(({ record }) => record.type === 'access' && 'hits' in record && Number(record.hits) > 0);
      return entries
        .filter(({ record }) => record.type === 'processing')
        .map(({ record, chainValid }) => ({ ...processingRecordView(record as ProcessingRecord, chainValid), provided }));
    });
  };
}
