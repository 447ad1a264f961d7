import {
  type DocumentNode,
  type GraphQLSchema,
  TypeInfo,
  getNamedType,
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

/** The first selected field the set does not allow, or null when the document stays inside it. */
export function firstForbiddenField(selected: readonly string[], allowed: FieldSet): string | null {
  for (const coordinate of selected) {
    if (coordinate.endsWith('.__schema') || coordinate.endsWith('.__type')) continue;
    if (!allowed.has(coordinate)) return coordinate;
  }
  return null;
}
