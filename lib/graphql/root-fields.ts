import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  Kind,
  type SelectionSetNode,
  getArgumentValues,
  getOperationAST,
  getVariableValues,
} from 'graphql';

/**
 * The fields an operation selects at its root, through inline fragments and fragment spreads
 * (directives ignored: counting more is safe). Each fragment is followed once, as execution does
 * (it merges repeated spreads of one fragment): a chain of fragments that each spread the next
 * twice would otherwise take 2^n steps, and a cycle of spreads would never end (the query limits
 * read root fields before validation refuses a cycle). Kept per operation: yoga's parse cache
 * hands the same document to every request that sends the same text.
 */
export function rootFields(document: DocumentNode, selectionSet: SelectionSetNode): readonly FieldNode[] {
  let fields = walked.get(selectionSet);
  if (!fields) walked.set(selectionSet, (fields = walk(document, selectionSet)));
  return fields;
}

const walked = new WeakMap<SelectionSetNode, readonly FieldNode[]>();

/** A document's fragment definitions by name. */
export function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}

function walk(document: DocumentNode, selectionSet: SelectionSetNode): FieldNode[] {
  const fragments = fragmentsOf(document);
  const followed = new Set<string>();
  const fields: FieldNode[] = [];
  const collect = (set: SelectionSetNode): void => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) fields.push(selection);
      else if (selection.kind === Kind.INLINE_FRAGMENT) collect(selection.selectionSet);
      else if (!followed.has(selection.name.value)) {
        followed.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) collect(fragment.selectionSet);
      }
    }
  };
  collect(selectionSet);
  return fields;
}

/** A root field of the operation, with its arguments as execution will see them. */
export interface RootCall {
  field: string;
  args: Record<string, unknown>;
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
