import type { Span } from '@opentelemetry/api';
import type { GraphQLError } from 'graphql';
import type { ForeignOperation, ProcessingRecord } from '../lib/audit/records.ts';
import type { ErrorCode } from '../lib/errors.ts';
import type { NodeId, Partner } from '../lib/partners.ts';
import type { Purpose } from '../lib/policy/load.ts';
import type { SubjectRefFn } from '../lib/subject-ref.ts';
import type { Caller } from './auth/caller-token.ts';
import type { Deadline } from './federation/deadline.ts';
import type { NodeCallContext } from './federation/node-client.ts';

export type HitStatus = 'HIT' | 'NO_HIT' | 'UNAVAILABLE';

/** Everything one gateway request accumulates on its way through the plugins, for its audit records. */
export interface GatewayRequestState {
  startTime: number;
  span: Span;
  /** The purpose decision's span, from admission to the field check (DESIGN §7). */
  purposeSpan?: Span;
  /** The caller's own trace, when it sent a traceparent: kept only as the foreign operation. */
  callerTrace: { trace_id: string; span_id: string } | null;
  deadline: Deadline;
  /** Subject references for this request: one HMAC per BSN, dropped with the request. */
  subjectRef: SubjectRefFn;
  caller: Caller | null;
  /** The request's parameters as read from its body (none when it was refused before that). */
  params: RequestParams | null;
  purpose: Purpose | null;
  operation: { name: string | null; documentHash: string | null; fields: string[] };
  /** Public fields the document selects, as `Type.field`. */
  selected: ReadonlySet<string>;
  /** Why the request was refused; `field` names the first field outside the purpose. */
  denial: { code: ErrorCode; rule: string; field?: string } | null;
  partners: Map<Partner, HitStatus>;
  /** Partners that released data: their privacy officers may see the request. */
  providers: Set<Partner>;
  /** Nodes a call of this request was sent to, answered or not; the others never saw it (NodeCallContext). */
  reached: Set<NodeId>;
  processing: ProcessingRecord[];
  /** Errors that go next to the data of a partial answer: a partner that did not answer, a location left out. */
  partialErrors: GraphQLError[];
  /**
   * The context of the request's node calls, made when its first root field asks: one object for
   * all its root fields, so that their Person fields share batches (one `records` request per
   * node and round, DESIGN §2). A batch may serve several root fields, so node-call spans hang
   * under the request's span.
   */
  nodeCalls?: NodeCallContext;
}

export interface RequestParams {
  query: unknown;
  variables: unknown;
  operationName: unknown;
}

export interface GatewayContext {
  state: GatewayRequestState;
}

/**
 * The foreign operation of the request's processing records: the caller's trace, with the
 * caller's organisation as its token vouches for it. Never a header's text: whatever a caller
 * writes there would land in the audit log unchecked, a BSN or a user's name included.
 */
export function foreignOperation(state: GatewayRequestState): ForeignOperation | null {
  return state.callerTrace && { ...state.callerTrace, entity: state.caller!.org };
}

/** Combines statuses when one request asks a partner more than once: UNAVAILABLE > HIT > NO_HIT. */
export function recordPartnerStatus(state: GatewayRequestState, partner: Partner, status: HitStatus): void {
  const previous = state.partners.get(partner);
  if (previous === 'UNAVAILABLE' || (previous === 'HIT' && status === 'NO_HIT')) return;
  state.partners.set(partner, status);
}
