import { GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { sohError } from '../errors.ts';
import { isDateTime } from '../records.ts';

function parseDateTime(value: unknown): string {
  if (typeof value !== 'string' || !isDateTime(value)) {
    throw sohError('BAD_USER_INPUT', 'DateTime must be an RFC 3339 date-time with offset, e.g. 2026-06-01T00:00:00Z');
  }
  return value;
}

/** RFC 3339 date-time with offset; kept as the string given (the offset is the caller's). */
export const DateTimeScalar = new GraphQLScalarType({
  name: 'DateTime',
  serialize: (value) => (value instanceof Date ? value.toISOString() : parseDateTime(value)),
  parseValue: parseDateTime,
  parseLiteral: (node) => parseDateTime(node.kind === Kind.STRING ? node.value : undefined),
});

function literalToJson(node: ValueNode): unknown {
  switch (node.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return node.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    case Kind.LIST:
      return node.values.map(literalToJson);
    case Kind.OBJECT:
      return Object.fromEntries(node.fields.map((field) => [field.name.value, literalToJson(field.value)]));
    default:
      return null;
  }
}

/** Arbitrary JSON, used for audit attributes only. */
export const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: literalToJson,
});
