import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectFile } from '../lib/project.ts';

const RESULTS = projectFile('bench/results');

/** The issue asks for at least this many interleaved rounds before a target is a verdict. */
export const MIN_ROUNDS = 5;

export interface Measurement {
  target: string;
  /** Successful answers in the measured window; req/s and CPU per request count these only. */
  requests: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  /** Failed requests in the measured window, each once (bench/workload.ts, failedAnswer; timeouts; connection errors). */
  errors: number;
  /** CPU time of the target's process tree per successful answer (NaN with none). */
  cpuMicrosPerRequest: number;
  /** CPU time of the four nodes together per successful answer (NaN with none). */
  nodeCpuMicrosPerRequest: number;
  peakRssMiB: number;
}

export interface Report {
  commit: string;
  machine: { cpus: number; model: string; memoryGiB: number; node: string; loadAverage: number };
  /** Which CPUs each kind of process ran on (./cpus.ts). */
  pinning: string;
  settings: { persons: number; seconds: number; warmupSeconds: number; leadInSeconds: number; rounds: number; connections: number; rate: number };
  hive: { ran: boolean; reason?: string };
  seeding: { persons: number; records: number; seconds: number; recordsPerSecond: number; maxRssMiB: number; perNode: Record<string, number> } | null;
  targets: string[];
  /** The targets measured on our full gateway's one process: its peak RSS is the highest of theirs. */
  fullGateway: string[];
  /** Per round, one measurement per target at fixed concurrency. */
  closed: Measurement[][];
  /** Per round, one measurement per target at a fixed arrival rate. */
  open: Measurement[][];
  scale: {
    persons: number;
    records: number;
    importRecordsPerSecond: number;
    importMaxRssMiB: number;
    lookups: number;
    lookupP50Micros: number;
    lookupP99Micros: number;
    lookupMaxMicros: number;
  } | null;
  /** OTLP export requests the one sink received, from every gateway with tracing on. */
  otlpExportRequests: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const pick = (rounds: Measurement[][], target: string) => rounds.map((round) => round.find((m) => m.target === target)!).filter(Boolean);

/** A value measured once per round: its median, and the lowest and highest round. */
interface OverRounds {
  median: number;
  low: number;
  high: number;
}

function overRounds(values: readonly number[]): OverRounds {
  return values.length ? { median: median(values), low: Math.min(...values), high: Math.max(...values) } : { median: NaN, low: NaN, high: NaN };
}

/** Per round, `combine` of a's and b's measurements (each pair measured minutes apart at most). */
function paired(rounds: Measurement[][], a: string, b: string, combine: (x: Measurement, y: Measurement) => number): OverRounds {
  return overRounds(
    rounds
      .map((round) => [round.find((m) => m.target === a), round.find((m) => m.target === b)] as const)
      .filter((pair): pair is readonly [Measurement, Measurement] => Boolean(pair[0] && pair[1]))
      .map(([x, y]) => combine(x, y)),
  );
}

/** Per round the ratio a / b of one measured value. */
function pairedRatio(rounds: Measurement[][], a: string, b: string, value: (m: Measurement) => number): OverRounds {
  return paired(rounds, a, b, (x, y) => value(x) / value(y));
}

const f = (value: number, digits = 0) => (Number.isFinite(value) ? value.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–');

/** The lowest and highest round, as a table cell. */
const range = (value: OverRounds) => `${f(value.low, 2)} – ${f(value.high, 2)}`;

function table(rounds: Measurement[][], targets: string[], ours: string): string[] {
  const lines = [
    '| target | req/s | p50 ms | p95 ms | p99 ms | errors | gateway CPU µs/req | nodes CPU µs/req | peak RSS MiB | req/s vs ours |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const target of targets) {
    const runs = pick(rounds, target);
    if (!runs.length) continue;
    lines.push(
      `| ${target} | ${f(median(runs.map((m) => m.rps)))} | ${f(median(runs.map((m) => m.p50)), 1)} | ${f(median(runs.map((m) => m.p95)), 1)} | ${f(median(runs.map((m) => m.p99)), 1)} | ${runs.reduce((sum, m) => sum + m.errors, 0)} | ${f(median(runs.map((m) => m.cpuMicrosPerRequest)))} | ${f(median(runs.map((m) => m.nodeCpuMicrosPerRequest)))} | ${f(Math.max(...runs.map((m) => m.peakRssMiB)))} | ${f(pairedRatio(rounds, target, ours, (m) => m.rps).median, 2)}× |`,
    );
  }
  return lines;
}

/** Every measurement of the named targets in `rounds`: what a check's value rests on. */
const of = (rounds: Measurement[][], ...targets: string[]) => rounds.flat().filter((m) => targets.includes(m.target));

/**
 * Why measurements cannot carry a verdict, or null: a target that failed requests or answered none
 * in a round did not do the work compared (a dead peer's req/s is 0, and ours ÷ 0 would "hold").
 */
function unsound(from: readonly Measurement[]): string | null {
  const bad = from.filter((m) => m.errors > 0 || m.requests === 0);
  if (!bad.length) return null;
  const errors = bad.reduce((sum, m) => sum + m.errors, 0);
  return `invalid: ${errors ? `${errors} failed requests` : 'a round without a successful request'} (${[...new Set(bad.map((m) => m.target))].join('; ')})`;
}

interface Check {
  name: string;
  value: OverRounds | number;
  holds: (value: number) => boolean;
  /** The measurements the value comes from. */
  from: Measurement[];
}

/**
 * The issue's targets, each with the measured value (the median over rounds), the range the
 * rounds spanned (this machine's noise, to read a verdict by) and whether it holds.
 */
function targetChecks(report: Report): string[] {
  const find = (prefix: string) => report.targets.find((name) => name.startsWith(prefix));
  const ours = find('ours hitCheck (full)');
  const off = find('ours hitCheck (policy/audit/tracing off)');
  const noPolicy = find('ours hitCheck (policy off)');
  const noAudit = find('ours hitCheck (audit off)');
  const plain = find('plain');
  const hive = find('Hive');
  const fanout = find('direct')!;
  const checks: Check[] = [];
  const ratio = (name: string, rounds: Measurement[][], peer: string, value: (m: Measurement) => number, holds: Check['holds']) =>
    checks.push({ name, value: pairedRatio(rounds, ours!, peer, value), holds, from: of(rounds, ours!, peer) });
  if (hive) {
    ratio('ours full ÷ Hive Gateway, req/s (≥ 1.5)', report.closed, hive, (m) => m.rps, (v) => v >= 1.5);
    ratio('ours full ÷ Hive Gateway, p99 at fixed concurrency (≤ 0.5)', report.closed, hive, (m) => m.p99, (v) => v <= 0.5);
    ratio('ours full ÷ Hive Gateway, p99 at the fixed rate (≤ 0.5)', report.open, hive, (m) => m.p99, (v) => v <= 0.5);
    ratio('ours full ÷ Hive Gateway, gateway CPU per request (≤ 0.67)', report.closed, hive, (m) => m.cpuMicrosPerRequest, (v) => v <= 2 / 3);
  }
  ratio('ours full ÷ plain stitching, req/s (≥ 2)', report.closed, plain!, (m) => m.rps, (v) => v >= 2);
  const cost = (name: string, without: string) =>
    checks.push({ name, value: paired(report.closed, ours!, without, (x, y) => (1 - x.rps / y.rps) * 100), holds: (v) => v <= 10, from: of(report.closed, ours!, without) });
  cost('cost of policy + audit + tracing, req/s (≤ 10 %)', off!);
  if (noPolicy) cost('cost of purpose policy alone, req/s (%)', noPolicy);
  if (noAudit) cost('cost of audit alone, req/s (%)', noAudit);
  checks.push({
    name: `p50 added over the direct fan-out at ${report.settings.rate} req/s, ms (≤ 2)`,
    value: paired(report.open, ours!, fanout, (x, y) => x.p50 - y.p50),
    holds: (v) => v <= 2,
    from: of(report.open, ours!, fanout),
  });
  // Every target on the full gateway's process, at either load: the process's peak is the highest.
  const onFull = [...of(report.closed, ...report.fullGateway), ...of(report.open, ...report.fullGateway)];
  checks.push({ name: 'peak RSS of our gateway under load, MiB (≤ 256)', value: Math.max(...onFull.map((m) => m.peakRssMiB)), holds: (v) => v <= 256, from: onFull });
  if (report.scale) {
    checks.push({ name: `node point lookup p99 at ${f(report.scale.persons)} persons, ms (≤ 1)`, value: report.scale.lookupP99Micros / 1000, holds: (v) => v <= 1, from: [] });
    checks.push({ name: 'import, records/s (≥ 50,000)', value: report.scale.importRecordsPerSecond, holds: (v) => v >= 50_000, from: [] });
  }
  return [
    '| target | measured | rounds ranged | holds |',
    '| --- | ---: | ---: | :---: |',
    ...checks.map(({ name, value, holds, from }) => {
      const measured = typeof value === 'number' ? value : value.median;
      return `| ${name} | ${f(measured, 2)} | ${typeof value === 'number' ? '' : range(value)} | ${unsound(from) ?? (holds(measured) ? 'yes' : 'no')} |`;
    }),
  ];
}

/**
 * How far the direct fan-out, which sends the same node requests with no gateway at all, leads
 * each gateway: no gateway on these nodes and this machine can lead another by more than the
 * fan-out leads it, so a target ratio above its ceiling cannot hold in this run.
 */
function ceilings(report: Report): string[] {
  const fanout = report.targets.find((name) => name.startsWith('direct'));
  if (!fanout) return [];
  const gateways = report.targets.filter((name) => ['ours hitCheck (full)', 'plain', 'Hive'].some((prefix) => name.startsWith(prefix)));
  return [
    '| direct fan-out ÷ | req/s | rounds ranged |',
    '| --- | ---: | ---: |',
    ...gateways.map((name) => {
      const ratio = pairedRatio(report.closed, fanout, name, (m) => m.rps);
      return `| ${name} | ${f(ratio.median, 2)} | ${range(ratio)} |`;
    }),
  ];
}

export function renderMarkdown(report: Report): string {
  const m = report.machine;
  const s = report.settings;
  const indicative = s.rounds < MIN_ROUNDS;
  const lines = [
    `# Benchmark, commit ${report.commit}`,
    '',
    ...(indicative ? [`**Only ${s.rounds} rounds, fewer than the ${MIN_ROUNDS} required: the targets below are indicative only, not verdicts.**`, ''] : []),
    `Machine: ${m.cpus} × ${m.model}, ${m.memoryGiB} GiB, Node.js ${m.node}, load average ${f(m.loadAverage, 2)} at the end (shared machine: compare ratios, not absolute numbers).`,
    `Pinning: ${report.pinning}.`,
    `Population ${f(s.persons)} persons; every target warmed for ${s.warmupSeconds} s, then ${s.rounds} interleaved rounds of ${s.seconds} s per target, each after ${s.leadInSeconds} s of unmeasured lead-in; medians over rounds, ratios are medians of per-round ratios.`,
    report.hive.ran ? '' : `Hive Gateway did not run: ${report.hive.reason}`,
    '',
    `## Fixed concurrency (${s.connections} connections)`,
    '',
    ...table(report.closed, report.targets, report.targets[0]!),
    '',
    `## Fixed arrival rate (${f(s.rate)} req/s, half of our full gateway's maximum)`,
    '',
    ...table(report.open, report.targets, report.targets[0]!),
    '',
    indicative ? `## Targets (indicative only: ${s.rounds} of ${MIN_ROUNDS} rounds)` : '## Targets',
    '',
    ...targetChecks(report),
    '',
    `## Ceilings (${s.connections} connections)`,
    '',
    'The direct fan-out sends the same node requests with no gateway: no gateway can lead another by more than the fan-out leads that other.',
    '',
    ...ceilings(report),
    '',
  ];
  if (report.seeding) {
    lines.push(`Seeding: ${f(report.seeding.records)} records for ${f(report.seeding.persons)} persons in ${f(report.seeding.seconds, 1)} s (${f(report.seeding.recordsPerSecond)} records/s, peak RSS ${f(report.seeding.maxRssMiB)} MiB).`);
  }
  if (report.scale) {
    const sc = report.scale;
    lines.push(
      `Node at scale: ${f(sc.persons)} persons (${f(sc.records)} records) imported at ${f(sc.importRecordsPerSecond)} records/s (peak RSS ${f(sc.importMaxRssMiB)} MiB); ${f(sc.lookups)} point lookups p50 ${f(sc.lookupP50Micros, 1)} µs, p99 ${f(sc.lookupP99Micros, 1)} µs, max ${f(sc.lookupMaxMicros)} µs.`,
    );
  }
  lines.push(`OTLP export requests received from the gateways with tracing on (one sink for all of them): ${report.otlpExportRequests}.`, '');
  return lines.join('\n');
}

/** Writes the run as JSON and Markdown under bench/results/ (git-ignored) and the latest table to its README. */
export function writeReport(report: Report): { markdown: string; file: string } {
  mkdirSync(RESULTS, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const markdown = renderMarkdown(report);
  const file = join(RESULTS, `${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(RESULTS, `${stamp}.md`), markdown);
  writeFileSync(join(RESULTS, 'README.md'), `${markdown}\nProduced by \`npm run bench\`; every run's JSON and Markdown are kept beside this file (not committed).\n`);
  return { markdown, file };
}
