import { type DocumentNode, type GraphQLSchema, Kind, type ValueNode, getOperationAST, getVariableValues } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { isValidBsn } from '../../lib/bsn.ts';
import { sohError } from '../../lib/errors.ts';
import { partnerOfOrg } from '../../lib/partners.ts';
import { type RateLimiter, afterTaking, rateLimited } from '../rate-limits.ts';
import { rootFields } from '../root-fields.ts';
import type { GatewayRequestState } from '../request-state.ts';

/** The public person queries and their arguments that name a person by BSN. */
const SUBJECT_ARGUMENTS: Record<string, readonly string[]> = {
  hitCheck: ['subject'],
  activeBans: ['subject'],
  contactBanned: ['subject', 'counterpart'],
};

interface NamedSubject {
  field: string;
  argument: string;
  bsn: unknown;
}

/** `{ bsn: … }` given inline or as a variable; whatever is not a string is left to GraphQL's own coercion. */
function bsnOf(value: ValueNode, variables: Record<string, unknown>): unknown {
  if (value.kind === Kind.VARIABLE) return (variables[value.name.value] as { bsn?: unknown } | null | undefined)?.bsn;
  if (value.kind !== Kind.OBJECT) return undefined;
  const bsn = value.fields.find((field) => field.name.value === 'bsn')?.value;
  if (!bsn) return undefined;
  if (bsn.kind === Kind.VARIABLE) return variables[bsn.name.value];
  return bsn.kind === Kind.STRING ? bsn.value : undefined;
}

/**
 * Every person the operation names, with the BSN as execution will see it: variables coerced and
 * their defaults applied. Variables that do not coerce name no one: execution refuses them itself.
 */
function namedSubjects(schema: GraphQLSchema, document: DocumentNode, operationName: string | null | undefined, raw: Record<string, unknown>): NamedSubject[] {
  const operation = getOperationAST(document, operationName);
  if (!operation) return [];
  const { coerced: variables } = getVariableValues(schema, operation.variableDefinitions ?? [], raw);
  if (!variables) return [];
  return rootFields(document, operation.selectionSet).flatMap((field) =>
    (SUBJECT_ARGUMENTS[field.name.value] ?? []).flatMap((argument) => {
      const value = field.arguments?.find((arg) => arg.name.value === argument)?.value;
      return value ? [{ field: field.name.value, argument, bsn: bsnOf(value, variables) }] : [];
    }),
  );
}

/**
 * Admits the persons an operation names before any of it runs, so that a refusal never leaves
 * another root field of the same request asking nodes unaudited: every BSN must pass the
 * 11-check (BAD_USER_INPUT, DESIGN §3), and a Veilig Thuis hit check takes one request from its
 * subject's bucket (RATE_LIMITED, §8), keyed by the subject reference.
 */
export function useSubjectAdmission(options: { states: WeakMap<Request, GatewayRequestState>; subjectChecks: RateLimiter }): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const state = options.states.get((args.contextValue as { request: Request }).request)!;
      const subjects = namedSubjects(args.schema, args.document, args.operationName, (args.variableValues ?? {}) as Record<string, unknown>);
      const invalid = subjects.find((subject) => typeof subject.bsn === 'string' && !isValidBsn(subject.bsn));
      if (invalid) {
        // The message never repeats the value.
        setResultAndStopExecution({ errors: [sohError('BAD_USER_INPUT', `${invalid.argument} is not a valid BSN (9 digits passing the 11-check).`)] });
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
