import { resolve } from 'node:path';
import { z } from 'zod';
import { projectFile } from './project.ts';

/** All state lives under one data directory (DESIGN §7): default ./.soh, env SOH_DATA_DIR. */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env['SOH_DATA_DIR'] ?? '.soh');
}

export function policyDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env['SOH_POLICY_DIR'] ?? projectFile('policies'));
}

export const port = z.coerce.number().int().min(0).max(65535);
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
