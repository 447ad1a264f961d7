import { loadPolicies, type PolicySet } from '../lib/policy/load.ts';
import { policyDir } from '../lib/config.ts';
import { schemaShape } from '../lib/schemas.ts';
import { NODE_IDS } from '../lib/partners.ts';
import { parseOptions, UsageError } from './usage.ts';

function load(): PolicySet {
  return loadPolicies(policyDir(), { gateway: schemaShape('gateway'), node: schemaShape('node') });
}

function grouped(coordinates: string[]): string[] {
  const byType = new Map<string, string[]>();
  for (const coordinate of coordinates) {
    const [type, field] = coordinate.split('.') as [string, string];
    byType.set(type, [...(byType.get(type) ?? []), field]);
  }
  return [...byType].map(([type, fields]) => `${type}: ${fields.join(', ')}`);
}

/** The text a privacy officer puts in a DPIA: per purpose, who, why, and exactly which fields. */
export function explain(policies: PolicySet, only?: string): string {
  const lines: string[] = [`policy revision ${policies.revision}`, ''];
  for (const purpose of policies.purposes.values()) {
    if (only && purpose.id !== only) continue;
    lines.push(`purpose ${purpose.id}  (${purpose.file})`);
    lines.push(`  ${purpose.description.replace(/\s+/g, ' ')}`);
    lines.push(`  processing activity: ${purpose.processingActivity}`);
    lines.push(`  legal basis: ${purpose.legalBasis}`);
    lines.push(`  who may use it: ${purpose.allow.map((a) => `orgs [${a.orgs.join(', ')}] with role [${a.roles.join(' or ')}]`).join('; ')}`);
    lines.push(`  case_ref: ${purpose.requireCaseRef ? 'required' : 'not used'}`);
    lines.push('  visible at the gateway:');
    for (const line of grouped(purpose.fields.list())) lines.push(`    ${line}`);
    for (const node of NODE_IDS) {
      const released = policies.releases.get(node)?.release.get(purpose.id);
      if (!released) {
        lines.push(`  released by ${node}: nothing (not even whether it knows the person)`);
        continue;
      }
      const fields = released.list();
      const existence = fields.includes('Query.records');
      const data = fields.filter((f) => !f.startsWith('Query.'));
      lines.push(`  released by ${node}: ${existence ? 'whether it knows the person' : 'no person lookups'}${data.length ? '; fields:' : ''}`);
      for (const line of grouped(data)) lines.push(`    ${line}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** `soh policy check` validates every file; `soh policy explain [--purpose P]` prints the rules. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, { purpose: { type: 'string' } }, true);
  const [sub, ...extra] = positionals;
  // `soh policy explain vt-hit-check` (the purpose without --purpose) must not explain every purpose.
  const misused = extra.length > 0 || (sub === 'check' && values.purpose !== undefined);
  if (!misused && sub === 'check') {
    const policies = load();
    console.log(`policies ok: ${policies.purposes.size} purposes, ${policies.releases.size} release files, revision ${policies.revision}`);
    return 0;
  }
  if (!misused && sub === 'explain') {
    const policies = load();
    if (values.purpose && !policies.purposes.has(values.purpose)) throw new UsageError(`unknown purpose "${values.purpose}"`);
    process.stdout.write(explain(policies, values.purpose));
    return 0;
  }
  throw new UsageError('soh policy check | soh policy explain [--purpose P]');
}
