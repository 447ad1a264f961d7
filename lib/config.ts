import { resolve } from 'node:path';
import { z } from 'zod';
import { NODE_IDS, nodeVariableSuffix } from './partners.ts';
import { projectFile } from './project.ts';

/** All state lives under one data directory (DESIGN §7): default ./.soh, env SOH_DATA_DIR. */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  // Set to nothing, it would be the working directory: a checkout's source tree, say.
  return resolve(settings(env, ['SOH_DATA_DIR']).SOH_DATA_DIR ?? '.soh');
}

export function policyDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(settings(env, ['SOH_POLICY_DIR']).SOH_POLICY_DIR ?? projectFile('policies'));
}

export const port = z.coerce.number().int().min(0).max(65535);

/** A setting that must say something: an empty or blank one would silently mean "anything" or "everywhere". */
export const nonBlank = z.string().trim().min(1, 'must not be empty');

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Where a key set is fetched from. Whoever can change the keys on their way can mint any token
 * they vouch for: https, or http only from this machine.
 */
export const keySetUrl = z
  .url({ protocol: /^https?$/, error: 'must be an https:// URL (http:// only on 127.0.0.1, ::1 or localhost)' })
  .refine((url) => URL.canParse(url) && (url.startsWith('https:') || LOOPBACK_HOSTS.has(new URL(url).hostname)), 'must be an https:// URL (http:// only on 127.0.0.1, ::1 or localhost)');
export const flag = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');

/**
 * Parses a configuration object; a bad or unknown setting stops start-up with its name and the
 * problem. `variables` names the environment variable behind a setting, for the message.
 */
export function parseConfig<T>(schema: z.ZodType<T>, input: unknown, source: string, variables: Record<string, string> = {}): T {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const path = issue.path.join('.') || '(root)';
    return `  ${path}${variables[path] ? ` (${variables[path]})` : ''}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration in ${source}:\n${problems.join('\n')}`);
}

/**
 * Every environment variable some part of the project reads: the components, `soh up`, the
 * benchmark and the test suite. Per node, `SOH_NODE_URL_<NODE>` (gateway) and
 * `SOH_NODE_PORT_<NODE>` (soh up).
 */
const KNOWN_VARIABLES: ReadonlySet<string> = new Set([
  'SOH_DATA_DIR', 'SOH_POLICY_DIR', 'SOH_AUDIT_MAX_BYTES', 'SOH_DEV',
  'SOH_GATEWAY_CONFIG', 'SOH_GATEWAY_PORT', 'SOH_GATEWAY_HOST', 'SOH_GATEWAY_AUDIENCE', 'SOH_DEADLINE_MS', 'SOH_NODE_CONNECTIONS',
  'SOH_RATE_LIMIT_REDIS_URL',
  'SOH_NODE_PORT', 'SOH_NODE_HOST', 'SOH_GATEWAY_JWKS_URL', 'SOH_GATEWAY_JWKS_FILE', 'SOH_NODE_DATABASE_URL',
  'SOH_BENCH_DISABLE', 'SOH_BENCH_NODES', 'SOH_BENCH_TOKEN_FILE', 'SOH_BENCH_SUPERGRAPH', 'SOH_BENCH_PORT',
  'SOH_TEST_PG_ADMIN_URL', 'SOH_TEST_REDIS_URL',
]);
const PER_NODE_VARIABLE = new RegExp(`^SOH_NODE_(?:URL|PORT)_(?:${NODE_IDS.map(nodeVariableSuffix).join('|')})$`);

/**
 * The SOH_* variables in `env` that nothing reads: a misspelt one (SOH_NODE_DATABSE_URL) would
 * otherwise leave its setting at the default without a word.
 */
export function unknownSettings(env: NodeJS.ProcessEnv): string[] {
  return Object.keys(env).filter((name) => name.startsWith('SOH_') && !KNOWN_VARIABLES.has(name) && !PER_NODE_VARIABLE.test(name)).sort();
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * The environment variables a component reads, those that are set. A variable set to nothing is
 * refused, not read as unset or as zero: an empty port would be a random one, and an empty host
 * every interface instead of loopback.
 */
export function settings<const Name extends string>(env: NodeJS.ProcessEnv, names: readonly Name[]): Partial<Record<Name, string>> {
  const set: Partial<Record<Name, string>> = {};
  for (const name of names) {
    const value = env[name];
    if (value === undefined) continue;
    if (value.trim() === '') throw new ConfigError(`${name} is set but empty: unset it for the default, or give a value`);
    set[name] = value;
  }
  return set;
}
