import { dataDir } from '../lib/config.ts';
import { MAX_SEED_PERSONS } from '../nodes/runtime/seed.ts';
import { seedAll } from '../nodes/seed-all.ts';
import { progressBar } from './progress.ts';
import { parseOptions, positiveInt } from './usage.ts';

/** `soh seed [--persons N] [--seed S]`: deterministic synthetic data for all four nodes. */
export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(args, { persons: { type: 'string' }, seed: { type: 'string' } });
  const persons = positiveInt(values.persons, 'persons', 10_000, MAX_SEED_PERSONS);
  const seed = positiveInt(values.seed, 'seed', 1);
  const summary = await seedAll({ dataDir: dataDir(), persons, seed, onProgress: progressBar('seeding') });
  const total = Object.values(summary.records).reduce((a, b) => a + b, 0);
  console.log(
    `seeded ${summary.persons.toLocaleString('en')} persons (seed ${seed}) in ${(summary.millis / 1000).toFixed(1)} s: ` +
      `${Object.entries(summary.records).map(([id, n]) => `${id} ${n.toLocaleString('en')}`).join(', ')} records ` +
      `(${Math.round(total / (summary.millis / 1000)).toLocaleString('en')} records/s)`,
  );
}
