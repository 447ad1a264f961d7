import { type DocumentNode, type GraphQLSchema, parse } from 'graphql';
import type { GatewayAccessRecord, ProcessingRecord } from '../../lib/audit/records.ts';
import { isValidBsn } from '../../lib/bsn.ts';
import { rootCalls } from '../../lib/graphql/root-fields.ts';
import { namedSubjects } from '../api/named-subjects.ts';
import type { QueryLimits } from '../limits.ts';
import type { GatewayRequestState } from '../request-state.ts';
import { gatewayProcessingRecord } from './processing-record.ts';

/**
 * Persons recorded for one refusal at most: the most an admitted request can name (four
 * `contactBanned` fields, two persons each). A refused document may name more, up to its token
 * limit; each would cost a record, written on the caller's say.
 */
const MAX_RECORDED_SUBJECTS = 8;

/**
 * The processing records of a refused request (DESIGN §7: `status_code` UNSET for client errors,
 * policy denials included): one per person its document names per root field, so that the
 * person's history (`accessLog` by `subjectBsn`) shows who tried to look them up and was refused,
 * not only who was answered. Written only for a caller whose token verified (an unknown caller's
 * text would put anyone in anyone's history) and only for valid BSNs; nothing is recorded of a
 * request refused before its body was read (the per-caller rate limit), or whose document does
 * not parse within the query limits.
 */
export function refusalRecords(state: GatewayRequestState, access: GatewayAccessRecord, schema: GraphQLSchema, limits: QueryLimits, now: number): ProcessingRecord[] {
  if (access.outcome !== 'DENIED' || !state.caller || !state.params || state.processing.length > 0) return [];
  const { query, variables, operationName } = state.params;
  const document = parsedWithin(query, limits);
  if (!document) return [];
  const raw = variables !== null && typeof variables === 'object' && !Array.isArray(variables) ? (variables as Record<string, unknown>) : {};
  const calls = rootCalls(schema, document, typeof operationName === 'string' ? operationName : null, raw);
  const seen = new Set<string>();
  const named: { field: string; bsn: string }[] = [];
  for (const { field, bsn } of namedSubjects(calls)) {
    if (typeof bsn !== 'string' || !isValidBsn(bsn) || seen.has(`${field} ${bsn}`)) continue;
    seen.add(`${field} ${bsn}`);
    named.push({ field, bsn });
  }
  const span = state.span.spanContext();
  return named.slice(0, MAX_RECORDED_SUBJECTS).map(({ field, bsn }) =>
    gatewayProcessingRecord(state, {
      span,
      parentSpanId: null,
      name: field,
      startTime: state.startTime,
      endTime: now,
      activity: access.processingActivity,
      subjectRef: state.subjectRef(bsn),
      attributes: { 'soh.decision': access.decision },
    }),
  );
}

function parsedWithin(query: unknown, limits: QueryLimits): DocumentNode | null {
  if (typeof query !== 'string' || Buffer.byteLength(query) > limits.maxDocumentBytes) return null;
  try {
    return parse(query, { maxTokens: limits.maxTokens });
  } catch {
    return null;
  }
}
