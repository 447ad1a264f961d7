import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, dataDir, flag, keySetUrl, nonBlank, parseConfig, policyDir, port, settings } from '../lib/config.ts';
import { DEV_ISSUER } from '../lib/dev-issuer.ts';
import { GATEWAY_ISSUER } from '../lib/keys.ts';
import { NODE_IDS, nodeVariableSuffix } from '../lib/partners.ts';
import { orgPattern } from '../lib/policy/load.ts';
import { DEFAULT_LIMITS } from './limits.ts';
import { DEFAULT_RATE_LIMITS } from './rate-limits.ts';

/** A request's deadline may be set up to this long. */
export const MAX_DEADLINE_MS = 30_000;

/** How long past the request deadline a stopping gateway waits for the last answers and their audit commits. */
export const DRAIN_MARGIN_MS = 1_000;

/**
 * The longest a gateway takes to stop on its own: its connections cut after one grace period, its
 * handlers given another (lib/http-server.ts), at the longest deadline it may be configured with.
 */
export const LONGEST_GATEWAY_STOP_MS = 2 * (MAX_DEADLINE_MS + DRAIN_MARGIN_MS);

const issuer = z.strictObject({
  // Not a name the gateway gives itself: its own tokens' issuer, or the dev issuer, which dev
  // mode adds in its place (and lets speak for every organisation).
  issuer: nonBlank
    .refine((name) => name !== GATEWAY_ISSUER && name !== DEV_ISSUER, 'is a name the gateway keeps for itself'),
  // A pattern that can match no `org` (`Politie`, `veilig-thuis*`) would refuse the issuer's every token.
  orgs: z.array(orgPattern).min(1),
  jwksUrl: keySetUrl.optional(),
  jwksFile: z.string().optional(),
  acceptJwtTyp: z.boolean().default(false),
}).refine((value) => Boolean(value.jwksUrl) !== Boolean(value.jwksFile), { message: 'exactly one of jwksUrl or jwksFile' });

function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

// perMinute at least 0.01: below it a Retry-After grows past what a header writes as an integer.
const bucketLimit = z.strictObject({ burst: z.number().int().min(1).max(1_000_000), perMinute: z.number().min(0.01).max(1_000_000) });

export const gatewayConfig = z.strictObject({
  port: port.default(4000),
  host: nonBlank.default('127.0.0.1'),
  dataDir: z.string(),
  policyDir: z.string(),
  dev: z.union([z.boolean(), flag]).default(false),
  audience: nonBlank.default('soh-gateway'),
  // Node reads at most 16 KiB of request headers in all, and answers more itself (431, unaudited).
  maxTokenBytes: z.number().int().min(512).max(14_336).default(8_192),
  clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
  // DESIGN §4: a maximum token age; a day at most, or there is none.
  maxTokenAgeSeconds: z.number().int().min(60).max(86_400).default(3_600),
  // Empty, it would match any case_ref, and the check would be off.
  caseRefPattern: nonBlank
    .refine(compiles, 'must be a regular expression')
    .default('^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$'),
  deadlineMs: z.number().int().min(50).max(MAX_DEADLINE_MS).default(1_500),
  nodes: z.strictObject(
    Object.fromEntries(NODE_IDS.map((id, index) => [id, z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).default(`http://127.0.0.1:${4101 + index}`)])) as Record<(typeof NODE_IDS)[number], z.ZodDefault<z.ZodURL>>,
  ),
  // One entry per issuer: a second would silently take the first one's place.
  issuers: z
    .array(issuer)
    .refine((issuers) => new Set(issuers.map((entry) => entry.issuer)).size === issuers.length, 'each issuer may be listed once')
    .default([]),
  auditMaxBytes: z.number().int().positive().optional(),
  nodeConnections: z.number().int().min(1).max(1024).default(32),
  /** DESIGN §8 RATE_LIMITED: token buckets per caller and, for Veilig Thuis checks, per subject. */
  rateLimits: z
    .strictObject({
      perCaller: bucketLimit.default(DEFAULT_RATE_LIMITS.perCaller),
      perSubject: bucketLimit.default(DEFAULT_RATE_LIMITS.perSubject),
      locationChecks: bucketLimit.default(DEFAULT_RATE_LIMITS.locationChecks),
      /** Redis shared by every replica, so that N replicas allow the limit once, not N times. */
      redisUrl: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
      keyPrefix: z.string().min(1).default('soh:rate-limit:'),
    })
    // One request may name the same person in each of its root fields: a smaller bucket would
    // refuse it every time, with a Retry-After that never comes true.
    .refine((limits) => limits.perSubject.burst >= DEFAULT_LIMITS.maxRootFields, {
      message: `must be at least ${DEFAULT_LIMITS.maxRootFields}, the root fields one request may have`,
      path: ['perSubject', 'burst'],
    })
    .prefault({}),
  /**
   * Benchmark only: switches off purpose binding and/or audit, to measure what they cost.
   * Refused unless dev mode is on; never for real data.
   */
  benchmarkDisable: z.array(z.enum(['purpose', 'audit'])).default([]),
});
export type GatewayConfig = z.infer<typeof gatewayConfig>;
/** Settings as written, before defaults. */
export type GatewaySettings = z.input<typeof gatewayConfig>;

const number = (value: string | undefined) => (value === undefined ? undefined : Number(value));

/** The environment variable behind each setting that has one. */
const VARIABLES = {
  port: 'SOH_GATEWAY_PORT',
  host: 'SOH_GATEWAY_HOST',
  audience: 'SOH_GATEWAY_AUDIENCE',
  deadlineMs: 'SOH_DEADLINE_MS',
  auditMaxBytes: 'SOH_AUDIT_MAX_BYTES',
  dev: 'SOH_DEV',
  nodeConnections: 'SOH_NODE_CONNECTIONS',
  benchmarkDisable: 'SOH_BENCH_DISABLE',
  'rateLimits.redisUrl': 'SOH_RATE_LIMIT_REDIS_URL',
} as const;

const ENVIRONMENT_ONLY = { dataDir: 'SOH_DATA_DIR', policyDir: 'SOH_POLICY_DIR', dev: 'SOH_DEV', benchmarkDisable: 'SOH_BENCH_DISABLE' } as const;

/** Where the gateway is told a node's URL: SOH_NODE_URL_POLITIE, SOH_NODE_URL_VEILIG_THUIS, … */
export const nodeUrlVariable = (id: (typeof NODE_IDS)[number]) => `SOH_NODE_URL_${nodeVariableSuffix(id)}`;

/**
 * Gateway settings: an optional YAML/JSON file (SOH_GATEWAY_CONFIG) for issuers and node URLs,
 * overridden by environment variables. Unknown keys and bad values stop start-up by name.
 */
export function gatewayConfigFromEnv(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const file = settings(env, ['SOH_GATEWAY_CONFIG']).SOH_GATEWAY_CONFIG;
  let fromFile: Record<string, unknown> = {};
  if (file) {
    try {
      fromFile = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError(`cannot read SOH_GATEWAY_CONFIG ${file}: ${(error as Error).message}`);
    }
  }
  if (typeof fromFile !== 'object' || Array.isArray(fromFile)) throw new ConfigError(`SOH_GATEWAY_CONFIG ${file} must hold a mapping of settings`);
  // Settings of the environment the gateway runs in, never of a file passed along with it: a file
  // could otherwise switch dev mode on (trusting the dev issuer for every organisation) or audit
  // off, and a data directory named there was silently replaced by SOH_DATA_DIR's.
  for (const [key, variable] of Object.entries(ENVIRONMENT_ONLY)) {
    if (key in fromFile) throw new ConfigError(`invalid configuration in ${file}:\n  ${key}: is set by ${variable} only, not in SOH_GATEWAY_CONFIG`);
  }
  // A section that is no mapping (`nodes: 5`, an empty `nodes:`) would spread into nothing and
  // leave every default in its place without a word.
  const section = (name: string): Record<string, unknown> => {
    const value = fromFile[name];
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`invalid configuration in ${file}:\n  ${name}: must be a mapping`);
    return { ...(value as Record<string, unknown>) };
  };
  const set = settings(env, [...Object.values(VARIABLES), ...NODE_IDS.map(nodeUrlVariable)]);
  const nodes = section('nodes');
  for (const id of NODE_IDS) {
    const url = set[nodeUrlVariable(id)];
    if (url) nodes[id] = url;
  }
  const rateLimits = section('rateLimits');
  if (set.SOH_RATE_LIMIT_REDIS_URL) rateLimits['redisUrl'] = set.SOH_RATE_LIMIT_REDIS_URL;
  const overrides = Object.fromEntries(
    Object.entries({
      port: set.SOH_GATEWAY_PORT,
      host: set.SOH_GATEWAY_HOST,
      audience: set.SOH_GATEWAY_AUDIENCE,
      deadlineMs: number(set.SOH_DEADLINE_MS),
      auditMaxBytes: number(set.SOH_AUDIT_MAX_BYTES),
      dev: set.SOH_DEV,
      nodeConnections: number(set.SOH_NODE_CONNECTIONS),
      benchmarkDisable: set.SOH_BENCH_DISABLE?.split(',').filter(Boolean),
    }).filter(([, value]) => value !== undefined),
  );
  const config = parseConfig(
    gatewayConfig,
    { ...fromFile, ...overrides, nodes, rateLimits, dataDir: dataDir(env), policyDir: policyDir(env) },
    file ? `${file} and the environment` : 'the environment (SOH_GATEWAY_*)',
    { ...VARIABLES, ...Object.fromEntries(NODE_IDS.map((id) => [`nodes.${id}`, nodeUrlVariable(id)])) },
  );
  if (config.benchmarkDisable.length > 0 && !config.dev) {
    throw new ConfigError('SOH_BENCH_DISABLE is allowed only with SOH_DEV=1 (synthetic data)');
  }
  return config;
}
