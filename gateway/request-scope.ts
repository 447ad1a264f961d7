import { ROOT_CONTEXT, SpanKind, type Tracer } from '@opentelemetry/api';
import type { Plugin } from 'graphql-yoga';
import type { Clock } from '../lib/clock.ts';
import { sohError } from '../lib/errors.ts';
import { type SubjectRefFn, memoised } from '../lib/subject-ref.ts';
import { Deadline } from './federation/deadline.ts';
import type { GatewayRequestState } from './request-state.ts';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/**
 * Opens the scope of one gateway request: a fresh trace (DESIGN §7: a caller cannot choose the
 * trace id; its traceparent is kept only as the foreign operation), the request's deadline, and
 * the state the other plugins fill in, and the request's parameters as its body gave them (the
 * audit of a refused request reads the persons it named from them). Operations are accepted only by POST, so that no BSN ever
 * sits in a URL.
 */
export function useRequestScope(options: {
  states: WeakMap<Request, GatewayRequestState>;
  tracer: Tracer;
  clock: Clock;
  deadlineMs: number;
  subjectRef: SubjectRefFn;
}): Plugin {
  return {
    onRequestParse({ request }) {
      const incoming = TRACEPARENT.exec(request.headers.get('traceparent') ?? '');
      const span = options.tracer.startSpan('gateway.request', { kind: SpanKind.SERVER, root: true }, ROOT_CONTEXT);
      options.states.set(request, {
        startTime: options.clock.now(),
        span,
        callerTrace: incoming ? { trace_id: incoming[1]!, span_id: incoming[2]! } : null,
        deadline: new Deadline(options.clock, options.deadlineMs),
        subjectRef: memoised(options.subjectRef),
        caller: null,
        params: null,
        purpose: null,
        operation: { name: null, documentHash: null, fields: [] },
        selected: new Set(),
        denial: null,
        partners: new Map(),
        providers: new Set(),
        reached: new Set(),
        processing: [],
        partialErrors: [],
      });
      if (request.method !== 'POST') {
        options.states.get(request)!.denial = { code: 'METHOD_NOT_ALLOWED', rule: 'operations only by POST' };
        throw sohError('METHOD_NOT_ALLOWED', 'Operations are accepted only by POST.', { headers: { Allow: 'POST' } });
      }
    },
    onParams({ params, request }) {
      const { query, variables, operationName } = params;
      options.states.get(request)!.params = { query, variables, operationName };
    },
  };
}
