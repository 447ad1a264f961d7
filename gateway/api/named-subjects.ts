import { type DocumentNode, type GraphQLSchema, getArgumentValues, getOperationAST, getVariableValues } from 'graphql';
import { rootFields } from '../root-fields.ts';

/** Where each public root field names a person by BSN: the argument, then its input field. */
const SUBJECT_PATHS: Record<string, readonly (readonly [argument: string, inputField: string])[]> = {
  hitCheck: [['subject', 'bsn']],
  activeBans: [['subject', 'bsn']],
  contactBanned: [
    ['subject', 'bsn'],
    ['counterpart', 'bsn'],
  ],
  accessLog: [['filter', 'subjectBsn']],
};

/** A root field of the operation, with its arguments as execution will see them. */
export interface RootCall {
  field: string;
  args: Record<string, unknown>;
}

/** A person one root field names: `bsn` as sent, checked by nobody yet. */
export interface NamedSubject {
  field: string;
  /** `subject`, `counterpart`, `filter.subjectBsn`: how a message names it without its value. */
  argument: string;
  bsn: unknown;
}

/**
 * The operation's root fields with their arguments coerced as execution will coerce them:
 * inline or from variables, defaults applied. Each variable is coerced on its own, so that one
 * that does not coerce (a bad `$at`) leaves the others' persons named; a field whose arguments
 * do not coerce is left out: execution refuses it itself.
 */
export function rootCalls(schema: GraphQLSchema, document: DocumentNode, operationName: string | null | undefined, raw: Record<string, unknown>): RootCall[] {
  const operation = getOperationAST(document, operationName);
  const query = schema.getQueryType();
  if (!operation || !query) return [];
  const variables: Record<string, unknown> = {};
  for (const definition of operation.variableDefinitions ?? []) Object.assign(variables, getVariableValues(schema, [definition], raw).coerced);
  const definitions = query.getFields();
  return rootFields(document, operation.selectionSet).flatMap((node) => {
    const definition = definitions[node.name.value];
    if (!definition) return [];
    try {
      return [{ field: node.name.value, args: getArgumentValues(definition, node, variables) }];
    } catch {
      return [];
    }
  });
}

/** Every BSN the calls name, with the field and argument that name it. */
export function namedSubjects(calls: RootCall[]): NamedSubject[] {
  return calls.flatMap(({ field, args }) =>
    (SUBJECT_PATHS[field] ?? []).map(([argument, inputField]) => ({
      field,
      argument: inputField === 'bsn' ? argument : `${argument}.${inputField}`,
      bsn: (args[argument] as Record<string, unknown> | null | undefined)?.[inputField],
    })),
  );
}
