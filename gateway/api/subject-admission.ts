import type { Plugin } from 'graphql-yoga';
import { isValidBsn } from '../../lib/bsn.ts';
import { sohError } from '../../lib/errors.ts';
import { partnerOfOrg } from '../../lib/partners.ts';
import { type RateLimiter, afterTaking, rateLimited } from '../rate-limits.ts';
import type { GatewayRequestState } from '../request-state.ts';
import { type RootCall, rootCalls } from '../../lib/graphql/root-fields.ts';
import { namedSubjects } from './named-subjects.ts';

/** A location that is not WGS84 degrees (NaN included): lat −90…90, lon −180…180. */
function impossibleLocation({ field, args }: RootCall): boolean {
  const location = field === 'activeBans' ? (args['location'] as { lat: number; lon: number } | null | undefined) : null;
  return !!location && !(Math.abs(location.lat) <= 90 && Math.abs(location.lon) <= 180);
}

/**
 * Admits the persons and places an operation names before any of it runs, so that a refusal
 * never leaves another root field of the same request asking nodes unaudited: every BSN must pass
 * the 11-check and every location must be WGS84 degrees (BAD_USER_INPUT, DESIGN §3), and a Veilig
 * Thuis hit check takes one request from its subject's bucket (RATE_LIMITED, §8), keyed by the
 * subject reference.
 */
export function useSubjectAdmission(options: { states: WeakMap<Request, GatewayRequestState>; subjectChecks: RateLimiter }): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const state = options.states.get((args.contextValue as { request: Request }).request)!;
      const calls = rootCalls(args.schema, args.document, args.operationName, (args.variableValues ?? {}) as Record<string, unknown>);
      // accessLog reads its own filter (an empty subjectBsn there is no filter at all).
      const subjects = namedSubjects(calls).filter((subject) => subject.field !== 'accessLog');
      const invalid = subjects.find((subject) => typeof subject.bsn === 'string' && !isValidBsn(subject.bsn));
      if (invalid) {
        // The message never repeats the value.
        setResultAndStopExecution({ errors: [sohError('BAD_USER_INPUT', `${invalid.argument} is not a valid BSN (9 digits passing the 11-check).`)] });
        return;
      }
      if (calls.some(impossibleLocation)) {
        setResultAndStopExecution({ errors: [sohError('BAD_USER_INPUT', 'location must be WGS84 degrees: lat −90…90, lon −180…180.')] });
        return;
      }
      if (partnerOfOrg(state.caller!.org) !== 'VEILIG_THUIS') return;
      const checked = subjects.filter((subject) => subject.field === 'hitCheck' && typeof subject.bsn === 'string');
      // All of the request's checks are counted, or none: a refused request uses up no subject's turn.
      return afterTaking(options.subjectChecks.takeAll(checked.map((subject) => state.subjectRef(subject.bsn as string))), (retryAfter) => {
        if (retryAfter === null) return;
        state.denial = { code: 'RATE_LIMITED', rule: 'per-subject rate limit (Veilig Thuis checks)' };
        setResultAndStopExecution({ errors: [rateLimited('for this subject', retryAfter)] });
      });
    },
  };
}
