import { createHash } from 'node:crypto';
import { filterSchema, pruneSchema } from '@graphql-tools/utils';
import {
  type DocumentNode,
  type GraphQLSchema,
  Kind,
  NoSchemaIntrospectionCustomRule,
  execute,
  getOperationAST,
  print,
  visit,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ROOT_CONTEXT, type Tracer, trace } from '@opentelemetry/api';
import { mayHoldBsn } from '../../lib/bsn.ts';
import { type ErrorCode, errorCode, sohError } from '../../lib/errors.ts';
import { declaredReadable } from '../../lib/graphql/request-body.ts';
import { executedFields, firstForbiddenField, selectedFields, selectsConditionally } from '../../lib/policy/field-set.ts';
import type { PolicySet } from '../../lib/policy/load.ts';
import { refusingCheck } from '../audit/access-record.ts';
import type { GatewayRequestState } from '../request-state.ts';
import { admitPurpose, recordablePurpose } from './purpose-gate.ts';

interface DocumentFacts {
  fields: string[];
  /** Some of `fields` may not run (`@skip`/`@include`, another operation): see `executedFields`. */
  conditional: boolean;
  hash: string;
  introspection: boolean;
  /** purpose id → first field outside it (null: inside). */
  decisions: Map<string, string | null>;
}

/** An operation name as the access record keeps it: a short name without a BSN-like digit run, else none. */
function recordableName(name: string | undefined): string | null {
  return name && name.length <= 64 && !mayHoldBsn(name) ? name : null;
}

/**
 * SHA-256 of the document's shape: every literal replaced by a placeholder, and every digit of a
 * name (an alias, an operation, variable or fragment name, a field the schema does not have) or
 * enum value by 0. The caller chooses those names, and an alias `s_123456782` would make the hash
 * of an otherwise known document a lookup table away from the BSN; without digits it holds none.
 */
function documentHash(document: DocumentNode): string {
  const withoutDigits = (node: { value: string }) => ({ ...node, value: node.value.replace(/\d/g, '0') });
  const shape = visit(document, {
    StringValue: () => ({ kind: Kind.STRING, value: '?' }),
    IntValue: () => ({ kind: Kind.INT, value: '0' }),
    FloatValue: () => ({ kind: Kind.FLOAT, value: '0' }),
    BooleanValue: () => ({ kind: Kind.BOOLEAN, value: false }),
    EnumValue: withoutDigits,
    Name: withoutDigits,
  });
  return createHash('sha256').update(print(shape)).digest('hex');
}

/**
 * Purpose binding (doelbinding) at the gateway, in the order of DESIGN §6: the token's purpose is
 * admitted before anything else is read (FORBIDDEN); after validation against the full public schema every
 * selected field must lie inside the purpose (PURPOSE_FORBIDS_FIELD, naming the first field), or
 * the operation is rejected whole before any node is called. Field sets are compiled at start-up
 * and decisions cached per (document, purpose). In dev mode introspection shows only the
 * purpose's fields; otherwise it is refused.
 */
export function usePurposeBinding(options: {
  states: WeakMap<Request, GatewayRequestState>;
  policies: PolicySet;
  schema: GraphQLSchema;
  dev: boolean;
  tracer: Tracer;
}): Plugin {
  const facts = new WeakMap<DocumentNode, DocumentFacts>();
  const purposeSchemas = new Map<string, GraphQLSchema>();
  if (options.dev) {
    for (const purpose of options.policies.purposes.values()) {
      purposeSchemas.set(
        purpose.id,
        pruneSchema(
          filterSchema({
            schema: options.schema,
            rootFieldFilter: (_operation, field) => purpose.fields.has(`Query.${field}`),
            objectFieldFilter: (type, field) => purpose.fields.has(`${type}.${field}`),
          }),
        ),
      );
    }
  }

  const factsOf = (schema: GraphQLSchema, document: DocumentNode): DocumentFacts => {
    let known = facts.get(document);
    if (!known) {
      const fields = selectedFields(schema, document);
      let introspection = false;
      visit(document, {
        Field(node) {
          if (node.name.value === '__schema' || node.name.value === '__type') introspection = true;
        },
      });
      known = { fields, conditional: selectsConditionally(document), hash: documentHash(document), introspection, decisions: new Map() };
      facts.set(document, known);
    }
    return known;
  };

  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      const state = options.states.get(request)!;
      const span = options.tracer.startSpan('purpose.check', { attributes: { 'soh.purpose': recordablePurpose(state.caller!.purpose) } }, trace.setSpan(ROOT_CONTEXT, state.span));
      state.purposeSpan = span;
      try {
        const { purpose } = admitPurpose(state.caller!, options.policies.purposes);
        state.purpose = purpose;
      } catch (error) {
        const purpose = options.policies.purposes.get(state.caller!.purpose);
        if (purpose) state.purpose = purpose;
        state.denial = { code: 'FORBIDDEN', rule: String((error as { extensions?: { reason?: string } }).extensions?.reason) };
        span.setAttribute('soh.decision', 'DENY:FORBIDDEN');
        span.end();
        // Refused whatever the body holds. One that can be read as it stands (JSON of a declared
        // length within the cap) is read first, only for the persons it names: the refusal's
        // audit records put it in their history (refusal-records.ts).
        if (!requestParser || !declaredReadable(request)) throw error;
        setRequestParser(async (incoming) => {
          try {
            const params = await requestParser(incoming);
            if (!Array.isArray(params) && !(params instanceof Response)) {
              state.params = { query: params.query, variables: params.variables, operationName: params.operationName };
            }
          } catch {
            // A body that does not parse names no one.
          }
          throw error;
        });
      }
    },
    onValidate({ params, context, addValidationRule }) {
      if (!options.dev) addValidationRule(NoSchemaIntrospectionCustomRule);
      const state = options.states.get((context as { request: Request }).request)!;
      return ({ valid, result }) => {
        const operation = getOperationAST(params.documentAST, (context as { params?: { operationName?: string } }).params?.operationName);
        const known = factsOf(params.schema, params.documentAST);
        // Names are the caller's text too, kept in the chain for good: a field the schema does not
        // have (`x123456782`), or an operation name that could hold a BSN, is not recorded.
        state.operation = { name: recordableName(operation?.name?.value), documentHash: known.hash, fields: valid ? known.fields : [] };
        const span = state.purposeSpan!;
        if (!valid) {
          const code: ErrorCode = errorCode(result[0]) ?? 'GRAPHQL_VALIDATION_FAILED';
          state.denial = { code, rule: refusingCheck(code) };
          span.setAttribute('soh.decision', `DENY:${code}`);
          span.end();
          return;
        }
        const purpose = state.purpose!;
        let forbidden = known.decisions.get(purpose.id);
        if (forbidden === undefined) {
          forbidden = firstForbiddenField(known.fields, purpose.fields);
          known.decisions.set(purpose.id, forbidden);
        }
        span.setAttribute('soh.decision', forbidden ? 'DENY:PURPOSE_FORBIDS_FIELD' : 'ALLOW');
        span.end();
        if (forbidden) {
          // Refused in onExecute, per request: yoga caches validation results per document, and
          // one caller's refusal must never become another caller's answer.
          state.denial = { code: 'PURPOSE_FORBIDS_FIELD', rule: `${purpose.ref}: fields`, field: forbidden };
          return;
        }
        state.selected = new Set(known.fields);
      };
    },
    onExecute({ args, setExecuteFn, setResultAndStopExecution }) {
      const state = options.states.get((args.contextValue as { request: Request }).request);
      const denial = state?.denial;
      if (denial?.code === 'PURPOSE_FORBIDS_FIELD') {
        const purpose = state!.purpose!.id;
        setResultAndStopExecution({
          errors: [sohError('PURPOSE_FORBIDS_FIELD', `${denial.field} is outside purpose ${purpose}.`, { field: denial.field, purpose })],
        });
        return;
      }
      const known = facts.get(args.document);
      // Nodes are asked for what this request runs, not for what its document could: the purpose
      // check above held for every field the document names.
      if (state && known?.conditional) {
        state.selected = new Set(executedFields(args.schema, args.document, args.operationName, (args.variableValues ?? {}) as Record<string, unknown>) ?? known.fields);
      }
      if (!options.dev) return;
      const purposeSchema = state?.purpose ? purposeSchemas.get(state.purpose.id) : undefined;
      if (known?.introspection && purposeSchema) setExecuteFn((executionArgs) => execute({ ...executionArgs, schema: purposeSchema }));
    },
  };
}
