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

/** Parses a configuration object; a bad or unknown setting stops start-up with its name and the problem. */
export function parseConfig<T>(schema: z.ZodType<T>, input: unknown, source: string): T {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  throw new ConfigError(`invalid configuration in ${source}:\n${problems.join('\n')}`);
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Picks the SOH_* variables a component reads, so that unknown ones can be reported by name. */
export function sohEnv(env: NodeJS.ProcessEnv, known: readonly string[]): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('SOH_') || value === undefined) continue;
    picked[key] = value;
  }
  for (const key of Object.keys(picked)) if (!known.includes(key)) delete picked[key];
  return picked;
}
