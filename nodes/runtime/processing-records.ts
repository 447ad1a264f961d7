import { openAuditReader } from '../../lib/audit/log.ts';
import { AuditReader } from '../../lib/audit/query.ts';
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
        .map(({ record, chainValid }) => {
          const r = record as Extract<typeof record, { type: 'processing' }>;
          return {
            component: r.resource.component,
            name: r.name,
            traceId: r.trace_id,
            spanId: r.span_id,
            parentSpanId: r.parent_span_id,
            startTime: new Date(r.start_time).toISOString(),
            endTime: new Date(r.end_time).toISOString(),
            statusCode: r.status_code,
            attributes: r.attributes,
            chainValid,
            provided,
          };
        });
    });
  };
}
