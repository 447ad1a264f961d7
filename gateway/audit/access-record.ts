import type { ExecutionResult } from 'graphql';
import type { GatewayAccessRecord } from '../../lib/audit/records.ts';
import type { Clock } from '../../lib/clock.ts';
import type { PolicySet } from '../../lib/policy/load.ts';
import { recordablePurpose } from '../purpose/purpose-gate.ts';
import { type ErrorCode, errorCode } from '../../lib/errors.ts';
import { PARTNERS, partnerInfo } from '../../lib/partners.ts';
import type { GatewayRequestState } from '../request-state.ts';

/** The check that refused a request for its input, as its access record names the rule that decided. */
const REFUSING_CHECK: Partial<Record<ErrorCode, string>> = {
  GRAPHQL_PARSE_FAILED: 'request and document parsing',
  GRAPHQL_VALIDATION_FAILED: 'public schema validation',
  BAD_USER_INPUT: 'input validation',
  QUERY_TOO_COMPLEX: 'query limits',
};

/** Errors beside data: a partner's part missing, or a location check held back (`violatedAt` withheld). */
const PARTIAL_CODES = new Set<string>(['PARTNER_UNAVAILABLE', 'RATE_LIMITED']);

export function refusingCheck(code: ErrorCode): string {
  return REFUSING_CHECK[code] ?? code;
}

/**
 * The one access record the gateway writes per request (DESIGN §7), denied and failed requests
 * included: who asked, under which purpose and legal basis, what the policy decided and by which
 * rule, and what each partner answered. Never a BSN. PARTIAL when part of the answer is missing: a
 * person query's partner UNAVAILABLE, a node that did not return its records to accessLog, or a
 * location check held back by its rate limit.
 */
export function gatewayAccessRecord(state: GatewayRequestState, result: ExecutionResult, policies: PolicySet, clock: Clock): GatewayAccessRecord {
  const caller = state.caller;
  // Refused before the purpose binding ran (a caller over its rate limit): the purpose its token
  // names still gives the record its processing activity and legal basis.
  const purpose = state.purpose ?? (caller ? (policies.purposes.get(caller.purpose) ?? null) : null);
  const failedWhole = result.data == null && (result.errors?.length ?? 0) > 0;
  const code = state.denial?.code ?? (failedWhole ? (errorCode(result.errors![0]) ?? 'INTERNAL') : null);
  // Allowed, then failed: nothing was released, and no rule refused it.
  const internal = code === 'INTERNAL' || code === 'AUDIT_UNAVAILABLE';
  const outcome: GatewayAccessRecord['outcome'] =
    internal || code === 'ISSUER_UNAVAILABLE' ? 'ERROR'
    : code ? 'DENIED'
    : [...state.partners.values()].includes('UNAVAILABLE') || state.partialErrors.some((error) => PARTIAL_CODES.has(errorCode(error)!)) ? 'PARTIAL'
    : 'ALLOWED';
  return {
    type: 'access',
    component: 'gateway',
    trace_id: state.span.spanContext().traceId,
    time: new Date(state.startTime).toISOString(),
    requester: { org: caller?.org ?? 'unknown', sub: caller?.sub ?? 'unknown', roles: caller?.roles ?? [] },
    purpose: caller ? recordablePurpose(caller.purpose) : 'unknown',
    processingActivity: purpose?.processingActivity ?? 'unknown',
    legalBasis: purpose?.legalBasis ?? 'unknown',
    caseRef: caller?.caseRef ?? null,
    operation: { name: state.operation.name, documentHash: state.operation.documentHash, fields: state.operation.fields },
    decision: code && !internal ? `DENY:${code}` : 'ALLOW',
    rule: state.denial?.rule ?? (code && !internal ? refusingCheck(code) : purpose ? `${purpose.ref}: allow` : 'none'),
    policyRevision: policies.revision,
    outcome,
    partners: PARTNERS.filter((partner) => state.partners.has(partner)).map((partner) => {
      const status = state.partners.get(partner)!;
      return status === 'UNAVAILABLE' && !state.reached.has(partnerInfo(partner).nodeId) ? { partner, status, reached: false as const } : { partner, status };
    }),
    providers: PARTNERS.filter((partner) => state.providers.has(partner)),
  };
}
