import { SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { AuditLog } from '../lib/audit/log.ts';
import { useDurableAudit } from '../lib/audit/plugin.ts';
import type { Clock } from '../lib/clock.ts';
import { errorCode } from '../lib/errors.ts';
import { useRequestBody } from '../lib/graphql/request-body.ts';
import { maskError, useErrorContract } from '../lib/graphql/error-contract.ts';
import { DateTimeScalar, JSONScalar } from '../lib/graphql/scalars.ts';
import type { Partner } from '../lib/partners.ts';
import type { PolicySet } from '../lib/policy/load.ts';
import { schemaSource } from '../lib/schemas.ts';
import type { SubjectRefFn } from '../lib/subject-ref.ts';
import { VERSION } from '../lib/telemetry.ts';
import { createAccessLogResolver } from './api/access-log.ts';
import { usePartialErrors } from './api/partial-errors.ts';
import { createPersonResolvers } from './api/person-resolvers.ts';
import { useSubjectAdmission } from './api/subject-admission.ts';
import { gatewayAccessRecord } from './audit/access-record.ts';
import { refusalRecords } from './audit/refusal-records.ts';
import type { Caller } from './auth/caller-token.ts';
import type { GatewayKeys } from './auth/gateway-keys.ts';
import { useCallerAuthentication } from './auth/plugin.ts';
import type { NodeClient } from './federation/node-client.ts';
import { PersonFetcher } from './federation/person-fetcher.ts';
import { buildStitchedPerson } from './federation/stitched-person.ts';
import { DEFAULT_LIMITS, type QueryLimits, useQueryLimits } from './limits.ts';
import { parseCaches } from './parse-cache.ts';
import { type RateLimiter, useCallerRateLimit } from './rate-limits.ts';
import { usePurposeBinding } from './purpose/plugin.ts';
import { useRequestScope } from './request-scope.ts';
import type { GatewayContext, GatewayRequestState } from './request-state.ts';

const PARSE_CACHE_ENTRIES = 256;

export interface GatewayDependencies {
  policies: PolicySet;
  clients: ReadonlyMap<Partner, NodeClient>;
  keys: GatewayKeys;
  audit: AuditLog;
  auditFile: string;
  verifyCaller(authorization: string | null): Promise<Caller>;
  subjectRef: SubjectRefFn;
  clock: Clock;
  tracer: Tracer;
  dev: boolean;
  deadlineMs: number;
  limits?: QueryLimits;
  /** DESIGN §8: per caller and, for Veilig Thuis checks, per subject; location checks per caller and subject. */
  rateLimiters: { perCaller: RateLimiter; perSubject: RateLimiter; locationChecks: RateLimiter };
  /** Benchmark only: what to switch off (see GatewayConfig.benchmarkDisable). */
  benchmarkDisable?: readonly ('purpose' | 'audit')[];
  /** Extra routes (the audit viewer page) mounted before GraphQL. */
  routes?: Plugin[];
}

/**
 * The gateway: one yoga server whose cross-cutting behaviour is the plugin list below, read top
 * to bottom in the order a request meets it.
 */
export function createGateway(deps: GatewayDependencies): YogaServerInstance<object, GatewayContext> {
  const states = new WeakMap<Request, GatewayRequestState>();
  const limits = deps.limits ?? DEFAULT_LIMITS;
  const stitched = buildStitchedPerson(deps.clients);
  const person = createPersonResolvers({ fetcher: new PersonFetcher(stitched), clock: deps.clock, tracer: deps.tracer, locationChecks: deps.rateLimiters.locationChecks });
  const schema = makeExecutableSchema<GatewayContext>({
    typeDefs: schemaSource('gateway'),
    resolvers: {
      DateTime: DateTimeScalar,
      JSON: JSONScalar,
      Query: {
        hitCheck: person.hitCheck,
        activeBans: person.activeBans,
        contactBanned: person.contactBanned,
        accessLog: createAccessLogResolver({ auditFile: deps.auditFile, clients: deps.clients, subjectRef: deps.subjectRef, clock: deps.clock, tracer: deps.tracer }),
      },
    },
  });

  const plugins: Plugin[] = [
    useHealthAndKeys(deps),
    ...(deps.routes ?? []),
    useRequestScope({ states, tracer: deps.tracer, clock: deps.clock, deadlineMs: deps.deadlineMs, subjectRef: deps.subjectRef }),
    useCallerAuthentication({ states, verify: deps.verifyCaller }),
    useCallerRateLimit({ states, buckets: deps.rateLimiters.perCaller }),
    deps.benchmarkDisable?.includes('purpose')
      ? useUnguardedPurpose(states, deps.policies)
      : usePurposeBinding({ states, policies: deps.policies, schema, dev: deps.dev, tracer: deps.tracer }),
    useRequestBody(),
    useQueryLimits(limits),
    useSubjectAdmission({ states, subjectChecks: deps.rateLimiters.perSubject }),
    useErrorContract(),
    usePartialErrors(states),
    deps.benchmarkDisable?.includes('audit') ? useSpanEnd(states) : useDurableAudit({
      log: deps.audit,
      recordsFor: (request, result) => {
        const state = states.get(request);
        if (!state) return [];
        const access = gatewayAccessRecord(state, result, deps.policies, deps.clock);
        return [...state.processing, ...refusalRecords(state, access, schema, limits, deps.clock.now()), access];
      },
      onFinished: (request, result, written) => {
        const state = states.get(request);
        if (!state) return;
        state.deadline.dispose();
        if (state.purposeSpan?.isRecording()) state.purposeSpan.end();
        if (!written || result.errors?.some((error) => errorCode(error) === 'INTERNAL')) state.span.setStatus({ code: SpanStatusCode.ERROR });
        state.span.end();
      },
    }),
  ];

  return createYoga<object, GatewayContext>({
    schema,
    context: ({ request }) => ({ state: states.get(request)! }),
    graphqlEndpoint: '/graphql',
    graphiql: deps.dev ? { title: 'Samen onder Handbereik (dev)' } : false,
    landingPage: false,
    // Callers are systems and the same-origin audit viewer; yoga's default would grant every
    // origin (credentials included) a way to call the gateway from a page of its own.
    cors: false,
    multipart: false,
    maskedErrors: { maskError },
    parserAndValidationCache: parseCaches(PARSE_CACHE_ENTRIES),
    maxRequestBodySize: false,
    logging: false,
    plugins,
  });
}

/** Benchmark only: names the token's purpose for the resolvers without checking anything. */
function useUnguardedPurpose(states: WeakMap<Request, GatewayRequestState>, policies: PolicySet): Plugin {
  return {
    onRequestParse({ request }) {
      const state = states.get(request)!;
      state.purpose = policies.purposes.get(state.caller!.purpose) ?? null;
    },
    onValidate({ context }) {
      const state = states.get((context as { request: Request }).request)!;
      state.selected = ALL_PUBLIC_FIELDS;
    },
  };
}

const ALL_PUBLIC_FIELDS: ReadonlySet<string> = new Set(
  ['PartnerHit.contact', 'PartnerContact.organisation', 'PartnerContact.unit', 'PartnerContact.phone', 'PartnerContact.email'],
);

function useSpanEnd(states: WeakMap<Request, GatewayRequestState>): Plugin {
  return {
    onResultProcess({ request }) {
      const state = states.get(request);
      state?.deadline.dispose();
      state?.span.end();
    },
  };
}

function useHealthAndKeys(deps: GatewayDependencies): Plugin {
  return {
    onRequest({ url, endResponse }) {
      switch (url.pathname) {
        case '/.well-known/jwks.json':
          endResponse(Response.json(deps.keys.jwks(), { headers: { 'cache-control': 'public, max-age=300' } }));
          return;
        case '/healthz':
          endResponse(Response.json({ status: 'ok' }));
          return;
        case '/readyz': {
          const ready = deps.audit.healthy;
          const nodes = Object.fromEntries([...deps.clients].map(([partner, client]) => [partner, client.breaker.state]));
          endResponse(Response.json({ ready, version: VERSION, policyRevision: deps.policies.revision, nodes }, { status: ready ? 200 : 503 }));
          return;
        }
      }
    },
  };
}
