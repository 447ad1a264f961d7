import {
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLSchema,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  type SelectionNode,
  type SelectionSetNode,
  TypeInfo,
  getDirectiveValues,
  getNamedType,
  getOperationAST,
  getVariableValues,
  isObjectType,
  visit,
  visitWithTypeInfo,
} from 'graphql';

/** Field names as written in policy files: a list, or "*" for every field of the type. */
export type FieldSpec = Record<string, '*' | string[]>;

/** A compiled, default-deny set of `Type.field` coordinates. */
export class FieldSet {
  constructor(private readonly coordinates: ReadonlySet<string>) {}

  has(coordinate: string): boolean {
    return this.coordinates.has(coordinate);
  }

  hasType(typeName: string): boolean {
    for (const coordinate of this.coordinates) if (coordinate.startsWith(`${typeName}.`)) return true;
    return false;
  }

  list(): string[] {
    return [...this.coordinates].sort();
  }
}

export interface FieldSpecProblem {
  path: (string | number)[];
  message: string;
}

/** Resolves a policy field spec against a schema; every unknown type or field is a problem. */
export function compileFieldSpec(schema: GraphQLSchema, spec: FieldSpec): { fields: FieldSet; problems: FieldSpecProblem[] } {
  const coordinates = new Set<string>();
  const problems: FieldSpecProblem[] = [];
  for (const [typeName, names] of Object.entries(spec)) {
    const type = schema.getType(typeName);
    if (!isObjectType(type)) {
      problems.push({ path: [typeName], message: `unknown object type "${typeName}"` });
      continue;
    }
    const known = type.getFields();
    if (names === '*') {
      for (const name of Object.keys(known)) coordinates.add(`${typeName}.${name}`);
      continue;
    }
    names.forEach((name, index) => {
      if (known[name]) coordinates.add(`${typeName}.${name}`);
      else problems.push({ path: [typeName, index], message: `unknown field "${name}" on type ${typeName}` });
    });
  }
  return { fields: new FieldSet(coordinates), problems };
}

/**
 * Every field a validated document selects, as `Type.field`, in document order. Meta fields
 * (`__typename`) are left out: they reveal nothing about a person.
 */
export function selectedFields(schema: GraphQLSchema, document: DocumentNode): string[] {
  const typeInfo = new TypeInfo(schema);
  const seen = new Set<string>();
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(node) {
        if (node.name.value === '__typename') return;
        const parent = typeInfo.getParentType();
        if (!parent) return;
        const typeName = getNamedType(parent).name;
        // Introspection types describe the schema, not persons; dev mode filters them per purpose.
        if (typeName.startsWith('__')) return;
        seen.add(`${typeName}.${node.name.value}`);
      },
    }),
  );
  return [...seen];
}

/**
 * Whether the fields a request gets can be fewer than its document selects: a field under `@skip`
 * or `@include`, or an operation that does not run beside the one that does. The purpose check
 * refuses a forbidden field wherever it stands; what is asked of nodes follows `executedFields`.
 */
export function selectsConditionally(document: DocumentNode): boolean {
  let conditional = document.definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION).length > 1;
  visit(document, {
    Directive(node) {
      if (node.name.value === 'skip' || node.name.value === 'include') conditional = true;
    },
  });
  return conditional;
}

/**
 * The fields the operation that runs selects, with `@skip` and `@include` applied to its variables,
 * as `Type.field` in document order (meta fields left out, as in `selectedFields`). Null when the
 * variables do not coerce: execution refuses that request anyway.
 */
export function executedFields(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  inputs: Record<string, unknown>,
): string[] | null {
  const operation = getOperationAST(document, operationName);
  const root = operation && schema.getRootType(operation.operation);
  if (!operation || !root) return null;
  const variables = getVariableValues(schema, operation.variableDefinitions ?? [], inputs);
  if (variables.errors) return null;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  const included = (node: SelectionNode) =>
    getDirectiveValues(GraphQLSkipDirective, node, variables.coerced)?.['if'] !== true &&
    getDirectiveValues(GraphQLIncludeDirective, node, variables.coerced)?.['if'] !== false;
  const seen = new Set<string>();
  const walk = (selectionSet: SelectionSetNode, parent: GraphQLNamedType | undefined, spread: ReadonlySet<string>) => {
    for (const selection of selectionSet.selections) {
      if (!included(selection)) continue;
      if (selection.kind === Kind.FIELD) {
        const field = isObjectType(parent) ? parent.getFields()[selection.name.value] : undefined;
        // __typename and the introspection fields are no field of the type: they reveal nothing of a person.
        if (!field || parent!.name.startsWith('__')) continue;
        seen.add(`${parent!.name}.${selection.name.value}`);
        if (selection.selectionSet) walk(selection.selectionSet, getNamedType(field.type), spread);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        walk(selection.selectionSet, selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent, spread);
      } else {
        const fragment = fragments.get(selection.name.value);
        if (!fragment || spread.has(fragment.name.value)) continue;
        walk(fragment.selectionSet, schema.getType(fragment.typeCondition.name.value), new Set([...spread, fragment.name.value]));
      }
    }
  };
  walk(operation.selectionSet, root, new Set());
  return [...seen];
}

/** The first selected field the set does not allow, or null when the document stays inside it. */
export function firstForbiddenField(selected: readonly string[], allowed: FieldSet): string | null {
  for (const coordinate of selected) {
    if (coordinate.endsWith('.__schema') || coordinate.endsWith('.__type')) continue;
    if (!allowed.has(coordinate)) return coordinate;
  }
  return null;
}
