import { readFileSync } from 'node:fs';
import { buildSchema, type GraphQLSchema } from 'graphql';

const SCHEMA_DIR = new URL('../schemas/', import.meta.url);

export function schemaSource(name: 'gateway' | 'node'): string {
  return readFileSync(new URL(`${name}.graphql`, SCHEMA_DIR), 'utf8');
}

/** The type structure of a schema file, for policy validation and field checks. */
export function schemaShape(name: 'gateway' | 'node'): GraphQLSchema {
  return buildSchema(schemaSource(name));
}

export const POLICY_DIR = new URL('../policies/', import.meta.url);
