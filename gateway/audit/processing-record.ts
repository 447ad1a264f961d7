import type { ProcessingRecord, StatusCode } from '../../lib/audit/records.ts';
import { VERSION } from '../../lib/telemetry.ts';
import { type GatewayRequestState, foreignOperation } from '../request-state.ts';

/**
 * One processing record of the gateway's (DESIGN §7): one action on one data subject, named by
 * the subject reference, within the request's trace and with the caller's trace as its foreign
 * operation. What the action found or released goes into `attributes`.
 */
export function gatewayProcessingRecord(
  state: GatewayRequestState,
  record: {
    span: { traceId: string; spanId: string };
    parentSpanId: string | null;
    name: string;
    startTime: number;
    endTime: number;
    statusCode?: StatusCode;
    activity: string;
    subjectRef: string;
    attributes: Record<string, unknown>;
  },
): ProcessingRecord {
  return {
    type: 'processing',
    trace_id: record.span.traceId,
    span_id: record.span.spanId,
    parent_span_id: record.parentSpanId,
    name: record.name,
    start_time: record.startTime,
    end_time: record.endTime,
    status_code: record.statusCode ?? 'UNSET',
    foreign_operation: foreignOperation(state),
    resource: { component: 'gateway', version: VERSION },
    attributes: {
      'dpl.core.processing_activity_id': record.activity,
      'dpl.core.data_subject_id': record.subjectRef,
      'dpl.core.data_subject_id_type': 'bsn-ref',
      ...record.attributes,
    },
  };
}
