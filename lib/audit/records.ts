/**
 * Audit record shapes (DESIGN §7). Processing records follow the Logboek Dataverwerkingen
 * standard and never name a person or a user; access records say who asked, why and with what
 * result, and are joined to processing records by trace_id. Both are plain JSON, chained by the log.
 */
export type StatusCode = 'UNSET' | 'ERROR';

export interface ForeignOperation {
  trace_id: string;
  span_id: string;
  entity: string;
}

export interface ProcessingRecord {
  type: 'processing';
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  start_time: number;
  end_time: number;
  status_code: StatusCode;
  foreign_operation: ForeignOperation | null;
  resource: { component: string; version: string };
  attributes: {
    'dpl.core.processing_activity_id': string;
    'dpl.core.data_subject_id': string;
    'dpl.core.data_subject_id_type': 'bsn-ref';
    [attribute: string]: unknown;
  };
}

export interface PartnerOutcome {
  partner: string;
  status: 'HIT' | 'NO_HIT' | 'UNAVAILABLE';
  /**
   * Present, false, when no call of the request left the gateway for this partner (its circuit was
   * open, or the deadline passed first): its node cannot have seen the request, whatever it says.
   */
  reached?: false;
}

export interface GatewayAccessRecord {
  type: 'access';
  component: 'gateway';
  trace_id: string;
  time: string;
  requester: { org: string; sub: string; roles: readonly string[] };
  purpose: string;
  processingActivity: string;
  legalBasis: string;
  caseRef: string | null;
  operation: { name: string | null; documentHash: string | null; fields: string[] };
  decision: string;
  rule: string;
  policyRevision: string;
  outcome: 'ALLOWED' | 'DENIED' | 'PARTIAL' | 'ERROR';
  partners: PartnerOutcome[];
  /** Partners that answered HIT or released data: their privacy officers may see this request. */
  providers: string[];
}

export interface NodeAccessRecord {
  type: 'access';
  component: string;
  trace_id: string;
  time: string;
  requester: { org: string; sub: string; roles: string[] };
  purpose: string;
  decision: string;
  fieldsReleased: string[];
  subjects: number;
  hits: number;
}

export type AuditRecord = ProcessingRecord | GatewayAccessRecord | NodeAccessRecord;

export const SUBJECT_ID_TYPE = 'bsn-ref' as const;
