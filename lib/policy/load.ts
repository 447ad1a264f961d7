import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { GraphQLSchema } from 'graphql';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { canonicalJson } from '../canonical-json.ts';
import { NODE_IDS } from '../partners.ts';
import { type FieldSet, type FieldSpec, compileFieldSpec } from './field-set.ts';

/** A policy file that cannot be used; start-up stops with this message. */
export class PolicyFileError extends Error {
  constructor(
    readonly file: string,
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${file}: ${path || '(document)'}: ${problem}`);
    this.name = 'PolicyFileError';
  }
}

const typeName = z.string().regex(/^[A-Z][A-Za-z0-9]*$/, 'must be a GraphQL type name');
const fieldName = z.string().regex(/^[_a-zA-Z][_a-zA-Z0-9]*$/, 'must be a GraphQL field name');
const fieldSpec = z.record(typeName, z.union([z.literal('*'), z.array(fieldName)]));
/** An organisation id, or a pattern of them (`veilig-thuis-*`, `*`), as policies and issuer entries name them. */
export const orgPattern = z
  .string()
  .regex(/^(\*|[a-z0-9]+(-[a-z0-9]+)*(-\*)?)$/, 'must be an organisation id, optionally ending in "-*", or "*"');
export const purposeId = z.string().regex(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, 'must be a lower-case purpose id');

export const purposeDocument = z.strictObject({
  id: purposeId,
  description: z.string().min(1),
  processingActivity: z.string().regex(/^urn:soh:activity:[a-z0-9-]+:\d+$/, 'must be urn:soh:activity:<name>:<version>'),
  legalBasis: z.string().min(1),
  allow: z.array(z.strictObject({ orgs: z.array(orgPattern).min(1), roles: z.array(z.string().min(1)).min(1) })).min(1),
  requireCaseRef: z.boolean(),
  fields: fieldSpec,
});

export const releaseDocument = z.strictObject({
  node: z.string().regex(/^[a-z]+(-[a-z]+)*$/),
  release: z.record(purposeId, fieldSpec),
});

export interface Purpose {
  id: string;
  description: string;
  processingActivity: string;
  legalBasis: string;
  allow: { orgs: string[]; roles: string[] }[];
  requireCaseRef: boolean;
  fields: FieldSet;
  /** The file as the operator named it (for `soh policy` and load errors). */
  file: string;
  /**
   * The file within the policy set, e.g. `purposes/vt-hit-check.yaml`: how decisions name their
   * rule, to callers and in access records, without a path of the machine they run on.
   */
  ref: string;
}

export interface ReleasePolicy {
  node: string;
  /** Purpose id → the node-API fields released for it. A purpose not present gets nothing. */
  release: Map<string, FieldSet>;
  file: string;
}

function readYaml(file: string, displayName: string): unknown {
  const document = parseDocument(readFileSync(file, 'utf8'), { uniqueKeys: true });
  const [first] = document.errors;
  if (first) {
    const line = first.linePos?.[0]?.line;
    throw new PolicyFileError(displayName, line ? `line ${line}` : '', first.message.split('\n')[0] ?? 'invalid YAML');
  }
  return document.toJS();
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, displayName: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const [issue] = parsed.error.issues;
  throw new PolicyFileError(displayName, issue?.path.join('.') ?? '', issue?.message ?? 'invalid');
}

function compileOrThrow(schema: GraphQLSchema, spec: FieldSpec, displayName: string, prefix: string): FieldSet {
  const { fields, problems } = compileFieldSpec(schema, spec);
  const [problem] = problems;
  if (problem) throw new PolicyFileError(displayName, [prefix, ...problem.path].join('.'), problem.message);
  return fields;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.yaml') || name.endsWith('.yml'))
    .sort()
    .map((name) => join(dir, name));
}

export interface PolicySet {
  purposes: Map<string, Purpose>;
  releases: Map<string, ReleasePolicy>;
  /** SHA-256 over the canonical form of every loaded document: which rules decided. */
  revision: string;
}

/**
 * Loads and validates every purpose file (against the public schema) and release file (against the
 * node schema) under `dir`. Any problem throws a PolicyFileError naming file, path and problem.
 */
export function loadPolicies(dir: string, schemas: { gateway: GraphQLSchema; node: GraphQLSchema }): PolicySet {
  for (const part of ['purposes', 'release']) {
    if (!existsSync(join(dir, part))) throw new PolicyFileError(relative(process.cwd(), join(dir, part)), '', 'missing: the policy directory (SOH_POLICY_DIR) holds purposes/ and release/');
  }
  const canonical: Record<string, unknown> = {};
  const purposes = new Map<string, Purpose>();
  for (const file of yamlFiles(join(dir, 'purposes'))) {
    const name = relative(process.cwd(), file);
    const document = parseWith(purposeDocument, readYaml(file, name), name);
    if (purposes.has(document.id)) {
      throw new PolicyFileError(name, 'id', `duplicate purpose "${document.id}" (also in ${purposes.get(document.id)!.file})`);
    }
    const fields = compileOrThrow(schemas.gateway, document.fields, name, 'fields');
    purposes.set(document.id, { ...document, fields, file: name, ref: relative(dir, file) });
    canonical[`purposes/${document.id}`] = document;
  }
  const releases = new Map<string, ReleasePolicy>();
  for (const file of yamlFiles(join(dir, 'release'))) {
    const name = relative(process.cwd(), file);
    const document = parseWith(releaseDocument, readYaml(file, name), name);
    if (!(NODE_IDS as readonly string[]).includes(document.node)) throw new PolicyFileError(name, 'node', `unknown node "${document.node}" (known: ${NODE_IDS.join(', ')})`);
    if (releases.has(document.node)) throw new PolicyFileError(name, 'node', `duplicate release file for node "${document.node}"`);
    const release = new Map<string, FieldSet>();
    for (const [purpose, spec] of Object.entries(document.release)) {
      if (!purposes.has(purpose)) throw new PolicyFileError(name, `release.${purpose}`, `unknown purpose "${purpose}"`);
      release.set(purpose, compileOrThrow(schemas.node, spec, name, `release.${purpose}`));
    }
    releases.set(document.node, { node: document.node, release, file: name });
    canonical[`release/${document.node}`] = document;
  }
  // Default deny would make a node without its file refuse everything; the set is incomplete, and says so before any node starts.
  for (const node of NODE_IDS) {
    if (!releases.has(node)) throw new PolicyFileError(relative(process.cwd(), join(dir, 'release', `${node}.yaml`)), '', 'missing: every node needs a release file');
  }
  const revision = createHash('sha256').update(canonicalJson(canonical)).digest('hex');
  return { purposes, releases, revision };
}

/** `veilig-thuis-*` matches `veilig-thuis-haaglanden`; `*` matches every organisation. */
export function orgMatches(pattern: string, org: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('-*')) return org.startsWith(pattern.slice(0, -1)) && org.length > pattern.length - 1;
  return pattern === org;
}
