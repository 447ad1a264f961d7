import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSchema, type GraphQLSchema } from 'graphql';
import { projectFile } from './project.ts';

const SCHEMA_DIR = projectFile('schemas');

export function schemaSource(name: 'gateway' | 'node'): string {
  return readFileSync(join(SCHEMA_DIR, `${name}.graphql`), 'utf8');
}

/** The type structure of a schema file, for policy validation and field checks. */
export function schemaShape(name: 'gateway' | 'node'): GraphQLSchema {
  return buildSchema(schemaSource(name));
}
