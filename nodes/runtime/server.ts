import { type Span, SpanKind, SpanStatusCode, ROOT_CONTEXT, type TextMapGetter, type Tracer, propagation, trace } from '@opentelemetry/api';
import { GraphQLError, type ValidationRule } from 'graphql';
import { createSchema, createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { AuditLog } from '../../lib/audit/log.ts';
import { useDurableAudit } from '../../lib/audit/plugin.ts';
import type { AuditRecord, NodeAccessRecord, ProcessingRecord } from '../../lib/audit/records.ts';
import type { Clock } from '../../lib/clock.ts';
import { errorCode, sohError } from '../../lib/errors.ts';
import { useRequestBody } from '../../lib/graphql/request-body.ts';
import { maskError, useErrorContract } from '../../lib/graphql/error-contract.ts';
import { rootCalls, rootFields } from '../../lib/graphql/root-fields.ts';
import { DateTimeScalar, JSONScalar } from '../../lib/graphql/scalars.ts';
import { firstForbiddenField, selectedFields } from '../../lib/policy/field-set.ts';
import type { PolicySet } from '../../lib/policy/load.ts';
import { schemaSource } from '../../lib/schemas.ts';
import { VERSION } from '../../lib/telemetry.ts';
import type { NodeStore } from '../store/store.ts';
import type { NodeDefinition } from './definition.ts';
import type { DownstreamClaims } from './gateway-token.ts';
import { createRecordsResolver, recordRefusal } from './records-resolver.ts';
import { createProcessingRecordsResolver } from './processing-records.ts';

export interface NodeDependencies {
  definition: NodeDefinition;
  store: NodeStore;
  policies: PolicySet;
  audit: AuditLog;
  /** The node's own audit file, read for privacy officers' queries. */
  auditFile: string;
  verifyToken(authorization: string | null): Promise<DownstreamClaims>;
  clock: Clock;
  tracer: Tracer;
}

/** What one node call accumulates for its audit records. */
export interface NodeRequestState {
  startTime: number;
  span: Span;
  /** The gateway's span that made this call (its node.call), once its token verified; else none. */
  parentSpanId: string | null;
  claims: DownstreamClaims | null;
  fieldsReleased: string[];
  denial: string | null;
  /** With a PURPOSE_FORBIDS_FIELD denial: the first field this node does not release. */
  forbiddenField?: string;
  processing: ProcessingRecord[];
  subjects: number;
  hits: number;
}

export interface NodeContext {
  state: NodeRequestState;
}

/** Reads W3C trace context straight from the request's headers. */
const HEADERS: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
};

/** The common node API (DESIGN §5b) for one organisation: token check, release policy, audit. */
export function createNodeApp(deps: NodeDependencies): YogaServerInstance<object, NodeContext> {
  const { definition, policies } = deps;
  const release = policies.releases.get(definition.id);
  if (!release) throw new Error(`no release file for node ${definition.id} under policies/release/`);
  const states = new WeakMap<Request, NodeRequestState>();
  const stateOf = (request: Request) => states.get(request);

  // One plugin for the request's state and the gateway's token: the trace the gateway names is
  // continued only once its token verifies. Anyone else who reaches the port gets a fresh trace, so
  // a record of their refused call can never be filed under a real request's trace id.
  const useRequestStateAndToken: Plugin = {
    async onRequestParse({ request }) {
      const startedAt = new Date();
      const startTime = deps.clock.now();
      let claims: DownstreamClaims | null = null;
      let parent = ROOT_CONTEXT;
      let refusal: unknown = null;
      try {
        if (request.method !== 'POST') throw sohError('METHOD_NOT_ALLOWED', 'Operations are accepted only by POST.', { headers: { Allow: 'POST' } });
        claims = await deps.verifyToken(request.headers.get('authorization'));
        parent = propagation.extract(ROOT_CONTEXT, request.headers, HEADERS);
      } catch (error) {
        refusal = error;
      }
      states.set(request, {
        startTime,
        span: deps.tracer.startSpan(`node.request ${definition.id}`, { kind: SpanKind.SERVER, startTime: startedAt }, parent),
        parentSpanId: trace.getSpanContext(parent)?.spanId ?? null,
        claims,
        fieldsReleased: [],
        denial: null,
        processing: [],
        subjects: 0,
        hits: 0,
      });
      if (refusal) throw refusal;
    },
  };

  // DESIGN §6 step 3: the organisation applies its own release file to the gateway's token.
  // Decisions are cached per (document, purpose) and enforced per request in onExecute: yoga
  // caches validation results per document, so a refusal there would reach other callers.
  const releaseDecisions = new WeakMap<object, { fields: string[]; forbidden: Map<string, string | null> }>();
  const useReleasePolicy: Plugin = {
    onValidate({ params, context, addValidationRule }) {
      addValidationRule(OneRootField);
      // Validation runs before the GraphQL context is built: the state is found by its request.
      const state = stateOf((context as { request: Request }).request)!;
      return ({ valid }) => {
        if (!valid) return;
        const purpose = state.claims!.purpose;
        let decisions = releaseDecisions.get(params.documentAST);
        if (!decisions) {
          decisions = { fields: selectedFields(params.schema, params.documentAST), forbidden: new Map() };
          releaseDecisions.set(params.documentAST, decisions);
        }
        let forbidden = decisions.forbidden.get(purpose);
        if (forbidden === undefined) {
          const released = release.release.get(purpose);
          forbidden = released ? firstForbiddenField(decisions.fields, released) : (decisions.fields[0] ?? 'Query.records');
          decisions.forbidden.set(purpose, forbidden);
        }
        if (forbidden) {
          state.denial = 'PURPOSE_FORBIDS_FIELD';
          state.forbiddenField = forbidden;
          return;
        }
        state.fieldsReleased = decisions.fields;
      };
    },
    onExecute({ args, setResultAndStopExecution }) {
      const state = stateOf((args.contextValue as { request: Request }).request)!;
      if (state.denial !== 'PURPOSE_FORBIDS_FIELD') return;
      // The persons it asked about are on record, refused; none is looked up, so whether the node
      // knows them stays withheld.
      for (const call of rootCalls(args.schema, args.document, args.operationName, (args.variableValues ?? {}) as Record<string, unknown>)) {
        if (call.field === 'records') recordRefusal(deps, state, call.args);
      }
      const purpose = state.claims!.purpose;
      setResultAndStopExecution({
        errors: [
          sohError('PURPOSE_FORBIDS_FIELD', `${state.forbiddenField} is not released by ${definition.id} for purpose ${purpose}.`, {
            field: state.forbiddenField,
            purpose,
          }),
        ],
      });
    },
  };

  const useAudit = useDurableAudit({
    log: deps.audit,
    recordsFor: (request, result) => {
      const state = stateOf(request);
      if (!state) return [];
      return [...state.processing, nodeAccessRecord(definition.id, state, result, deps.clock)];
    },
    onFinished: (request, result, written) => {
      const span = stateOf(request)?.span;
      if (!span) return;
      if (!written || result.errors?.some((error) => errorCode(error) === 'INTERNAL')) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    },
  });

  return createYoga<object, NodeContext>({
    schema: createSchema<NodeContext>({
      typeDefs: schemaSource('node'),
      resolvers: {
        DateTime: DateTimeScalar,
        JSON: JSONScalar,
        Query: {
          records: createRecordsResolver(deps),
          processingRecords: createProcessingRecordsResolver(deps),
        },
      },
    }),
    context: ({ request }) => ({ state: stateOf(request)! }),
    graphiql: false,
    landingPage: false,
    // Only the gateway calls a node, server to server: no browser origins, no file uploads.
    cors: false,
    multipart: false,
    maskedErrors: { maskError },
    maxRequestBodySize: false,
    logging: false,
    plugins: [useRequestStateAndToken, useRequestBody(), useErrorContract(), useReleasePolicy, useAudit, useHealth(deps)],
  });
}

/**
 * One question per call: the gateway asks one `records` batch (or one `processingRecords`) per
 * request. Aliases would multiply the batch cap, and the records written, by as many as a body
 * holds (a thousand `records` of 500 subjects each fit in 256 KiB).
 */
const OneRootField: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (rootFields(context.getDocument(), node.selectionSet).length > 1) {
      context.reportError(new GraphQLError('A node answers one question per call: one root field.', { nodes: node, extensions: { code: 'QUERY_TOO_COMPLEX' } }));
    }
  },
});

function nodeAccessRecord(
  component: string,
  state: NodeRequestState,
  result: { data?: unknown; errors?: readonly GraphQLError[] },
  clock: Clock,
): NodeAccessRecord {
  const failedWhole = result.data == null && result.errors?.length;
  const code = state.denial ?? (failedWhole ? (errorCode(result.errors![0]) ?? 'INTERNAL') : null);
  return {
    type: 'access',
    component,
    trace_id: state.span.spanContext().traceId,
    time: new Date(clock.now()).toISOString(),
    requester: { org: state.claims?.org ?? 'unknown', sub: state.claims?.sub ?? 'unknown', roles: state.claims?.roles ?? [] },
    purpose: state.claims?.purpose ?? 'unknown',
    decision: code ? `DENY:${code}` : 'ALLOW',
    fieldsReleased: code ? [] : releasedFields(state),
    subjects: state.subjects,
    hits: state.hits,
  };
}

/**
 * What a call released: for a records call, what its processing records say it released of each
 * person (nothing of a person the node does not know); for any other call, what it selected.
 */
function releasedFields(state: NodeRequestState): string[] {
  if (!state.fieldsReleased.includes('Query.records')) return state.fieldsReleased;
  const released = new Set(state.processing.flatMap((record) => record.attributes['soh.fields_released'] as string[]));
  return state.fieldsReleased.filter((field) => released.has(field));
}

function useHealth(deps: NodeDependencies): Plugin {
  return {
    onRequest({ url, endResponse }) {
      if (url.pathname === '/healthz') endResponse(Response.json({ status: 'ok', node: deps.definition.id }));
      else if (url.pathname === '/readyz') {
        const ready = deps.audit.healthy;
        endResponse(Response.json({ ready, node: deps.definition.id, version: VERSION, policyRevision: deps.policies.revision }, { status: ready ? 200 : 503 }));
      }
    },
  };
}
