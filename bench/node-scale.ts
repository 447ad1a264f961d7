import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { completeBsn } from '../lib/bsn.ts';
import { NODES } from '../nodes/registry.ts';
import { parseNdjson } from '../nodes/runtime/import-records.ts';
import { createRng } from '../nodes/runtime/random.ts';
import { seedPopulation } from '../nodes/runtime/seed.ts';
import { SqliteStore } from '../nodes/store/sqlite.ts';

/**
 * Node lookups at scale, measured inside one node's process: builds an NDJSON import file with
 * `persons` persons known to the police node (and their bans), imports it along the same path as
 * `soh import` (parse, validate every line, load all-or-nothing), then times single-person
 * lookups of random known and unknown BSNs. Prints one JSON line.
 */
const persons = Number(process.argv[2] ?? 1_000_000);
const lookups = Number(process.argv[3] ?? 100_000);
const node = NODES.politie;
const dir = mkdtempSync(join(tmpdir(), 'soh-node-scale-'));

try {
  const rng = createRng(7);
  const lines: string[] = [];
  const known: string[] = [];
  for (const person of seedPopulation({ persons: persons * 3, seed: 7 })) {
    const records = node.seed(person, rng);
    if (records.length === 0) continue;
    known.push(person.bsn);
    for (const record of records) lines.push(JSON.stringify(record));
    if (known.length >= persons) break;
  }
  const file = join(dir, 'politie.ndjson');
  writeFileSync(file, lines.join('\n') + '\n');
  lines.length = 0;

  const importStarted = process.hrtime.bigint();
  const { records, problems } = parseNdjson(readFileSync(file, 'utf8'), node);
  if (problems.length) throw new Error(`generated file has ${problems.length} bad lines`);
  const store = new SqliteStore(join(dir, 'store.db'));
  const loaded = await store.load(records);
  const importSeconds = Number(process.hrtime.bigint() - importStarted) / 1e9;
  const importMaxRssMiB = process.resourceUsage().maxRSS / 1024;

  // Unknown subjects: valid BSNs from a range the seed population does not use.
  const unknown: string[] = [];
  for (let prefix = 90_000_000; unknown.length < 10_000; prefix++) {
    const bsn = completeBsn(String(prefix));
    if (bsn) unknown.push(bsn);
  }
  const times = new Float64Array(lookups);
  let hits = 0;
  for (let i = 0; i < lookups; i++) {
    const bsn = i % 2 === 0 ? known[rng.int(0, known.length)]! : unknown[rng.int(0, unknown.length)]!;
    const started = process.hrtime.bigint();
    const [record] = store.lookupSync([bsn]);
    times[i] = Number(process.hrtime.bigint() - started) / 1e3;
    if (record) hits++;
  }
  await store.close();
  times.sort();
  const at = (p: number) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))]!;
  console.log(
    JSON.stringify({
      persons: known.length,
      records: loaded,
      importSeconds,
      importRecordsPerSecond: loaded / importSeconds,
      importMaxRssMiB,
      lookups,
      hits,
      lookupP50Micros: at(50),
      lookupP99Micros: at(99),
      lookupMaxMicros: times[times.length - 1],
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
