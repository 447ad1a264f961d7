import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { completeBsn } from '../lib/bsn.ts';
import { dataDir } from '../lib/config.ts';
import { signDevToken } from '../lib/dev-issuer.ts';
import { NODE_IDS } from '../lib/partners.ts';
import { nodeArgsFor, projectFile } from '../lib/project.ts';
import { subjectRefs } from '../lib/subject-ref.ts';
import { progressBar } from '../cli/progress.ts';
import { parseOptions, positiveInt } from '../cli/usage.ts';
import { seedAll, seedParameters, storeFile } from '../nodes/seed-all.ts';
import { type Started, freePort, siblingGatewayDir, startBenchTarget, startNodes, startOurGateway, startProcess, stopProcess } from './federation.ts';
import { detectCpuLayout, pinned } from './cpus.ts';
import { keepNodeTokenFresh } from './node-token.ts';
import { processTree, treeCpuMicros, treeRssBytes } from './procstat.ts';
import { type Measurement, type Report, writeReport } from './report.ts';
import { roundOrder } from './round-order.ts';
import { CALLERS } from './callers.ts';
import { type Subject, type Workload, answersKnownSubject, requestBody } from './workload.ts';

const PEERS = projectFile('bench/peers');

/** One thing the load generator can be pointed at. */
interface Target {
  name: string;
  workload: Workload;
  callerTokens: boolean;
  process: Started;
}

/**
 * `npm run bench` (`soh bench`): the four nodes on a large synthetic population, then, on the same
 * nodes, our gateway fully on and with purpose/audit/tracing off, a plain stitching gateway, Hive
 * Gateway and a direct fan-out; runs are interleaved round by round and each ratio is the median
 * over rounds. Results go to bench/results/.
 */
export async function run(args: string[]): Promise<number> {
  const { values } = parseOptions(args, {
    persons: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    'lead-in': { type: 'string' },
    rounds: { type: 'string' },
    connections: { type: 'string' },
    'scale-persons': { type: 'string' },
    'skip-scale': { type: 'boolean' },
  });
  const persons = positiveInt(values.persons, 'persons', 1_000_000);
  const seconds = positiveInt(values.seconds, 'seconds', 10);
  // A gateway's JIT takes about a minute of load to settle (Hive's as much as ours), so every
  // target is warmed longer than one measured round.
  const warmupSeconds = positiveInt(values.warmup, 'warmup', 30);
  // A target that sat idle while the others ran wakes slowly on this kind of machine: in A/B runs
  // its first 10 s after a switch ran at 0.63–0.74 of the req/s of its next 10 s (four cases of
  // five). So every measured round opens with a few seconds of the same load, unmeasured.
  const leadInSeconds = positiveInt(values['lead-in'], 'lead-in', 5);
  const rounds = positiveInt(values.rounds, 'rounds', 5);
  const connections = positiveInt(values.connections, 'connections', 10);
  const scalePersons = positiveInt(values['scale-persons'], 'scale-persons', 1_000_000);
  // Read now, beside the build this run measures: the tree may change while the run goes on.
  const commit = gitCommit();
  const dir = join(dataDir(), 'bench');
  const layout = detectCpuLayout();
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  installPeers();
  const seeding = await seedOnce(dir, persons);
  const subjects = sampleSubjects(dir);
  const subjectsFile = join(dir, 'subjects.json');
  writeFileSync(subjectsFile, JSON.stringify(subjects));

  const started: Started[] = [];
  // Each process joins the ones stopped at the end as soon as it runs: a later one failing to start leaves none behind.
  const track = async (starting: Promise<Started>) => {
    const one = await starting;
    started.push(one);
    return one;
  };
  const sink = await startOtlpSink();
  let stopToken = () => {};
  try {
    const nodes = await startNodes(dir);
    started.push(...Object.values(nodes));
    const tokenFile = join(dir, 'node-token');
    stopToken = await keepNodeTokenFresh(dir, tokenFile);
    const benchEnv = { SOH_BENCH_NODES: JSON.stringify(Object.fromEntries(NODE_IDS.map((id) => [id, nodes[id].url]))), SOH_BENCH_TOKEN_FILE: tokenFile };

    console.log('starting targets');
    const targetCpus = layout.target;
    const full = await track(startOurGateway('ours', dir, nodes, { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url }, targetCpus));
    const off = await track(startOurGateway('ours-off', siblingGatewayDir(dir, 'unguarded'), nodes, { SOH_BENCH_DISABLE: 'purpose,audit', OTEL_TRACES_SAMPLER: 'always_off' }, targetCpus));
    const noPolicy = await track(startOurGateway('ours-no-policy', siblingGatewayDir(dir, 'no-policy'), nodes, { SOH_BENCH_DISABLE: 'purpose', OTEL_EXPORTER_OTLP_ENDPOINT: sink.url }, targetCpus));
    const noAudit = await track(startOurGateway('ours-no-audit', siblingGatewayDir(dir, 'no-audit'), nodes, { SOH_BENCH_DISABLE: 'audit', OTEL_EXPORTER_OTLP_ENDPOINT: sink.url }, targetCpus));
    const plain = await track(startBenchTarget('plain-stitch', 'plain-stitch.ts', benchEnv, targetCpus));
    const fanout = await track(startBenchTarget('fanout', 'fanout.ts', benchEnv, targetCpus));
    const hive = await track(startHive(dir, benchEnv, targetCpus)).catch((error: Error) => error);
    if (hive instanceof Error) console.error(`Hive Gateway could not be run: ${hive.message}`);

    const targets: Target[] = [
      { name: 'ours hitCheck (full)', workload: 'hitCheck', callerTokens: true, process: full },
      { name: 'ours hitCheck (policy/audit/tracing off)', workload: 'hitCheck', callerTokens: true, process: off },
      { name: 'ours activeBans (full)', workload: 'activeBans', callerTokens: true, process: full },
      { name: 'ours hitCheck (policy off)', workload: 'hitCheck', callerTokens: true, process: noPolicy },
      { name: 'ours hitCheck (audit off)', workload: 'hitCheck', callerTokens: true, process: noAudit },
      { name: 'plain stitching, Person', workload: 'person', callerTokens: false, process: plain },
      ...(hive instanceof Error ? [] : [{ name: 'Hive Gateway, Person', workload: 'person' as const, callerTokens: false, process: hive }]),
      { name: 'direct fan-out, Person', workload: 'person', callerTokens: false, process: fanout },
    ];
    for (const target of targets) await checkAnswers(target, dir, subjects);

    const nodePids = Object.values(nodes).map((node) => node.child.pid!);
    const load = (target: Target, rate?: number, timing = { seconds, leadInSeconds }) =>
      measure(target, { dir, subjectsFile, connections, ...timing, rate, nodePids, loadCpus: layout.load });

    console.log(`warming up (${warmupSeconds} s per target)`);
    for (const target of targets) await load(target, undefined, { seconds: warmupSeconds, leadInSeconds: 0 }).then(() => undefined, () => undefined);

    const closed: Measurement[][] = [];
    for (let round = 1; round <= rounds; round++) {
      console.log(`fixed concurrency (${connections} connections), round ${round}/${rounds}`);
      closed.push([]);
      for (const target of roundOrder(targets, round)) closed[round - 1]!.push(await load(target));
    }
    const ourMax = median(closed.map((measurements) => measurements.find((m) => m.target === targets[0]!.name)!.rps));
    const rate = Math.max(1, Math.round(ourMax / 2));
    // At the fixed rate only what the latency targets compare: our full gateway and the baselines.
    const openTargets = targets.filter((target) => target.process !== off && target.process !== noPolicy && target.process !== noAudit && target.workload !== 'activeBans');
    const open: Measurement[][] = [];
    for (let round = 1; round <= rounds; round++) {
      console.log(`fixed arrival rate (${rate} req/s, half our full gateway's maximum), round ${round}/${rounds}`);
      open.push([]);
      for (const target of roundOrder(openTargets, round)) open[round - 1]!.push(await load(target, rate));
    }
    const scale = values['skip-scale'] ? null : nodeScale(scalePersons);

    const report: Report = {
      commit,
      machine: machine(),
      pinning: layout.description,
      settings: { persons, seconds, warmupSeconds, leadInSeconds, rounds, connections, rate },
      hive: hive instanceof Error ? { ran: false, reason: hive.message } : { ran: true },
      seeding,
      targets: targets.map((target) => target.name),
      fullGateway: targets.filter((target) => target.process === full).map((target) => target.name),
      closed,
      open,
      scale,
      otlpExportRequests: sink.exports(),
    };
    const { markdown, file } = writeReport(report);
    console.log(`\n${markdown}\nwritten to ${file}`);
    return 0;
  } finally {
    stopToken();
    await Promise.all(started.map(stopProcess));
    sink.close();
  }
}

/** Hive Gateway and the Mesh composer live in bench/peers, apart from the product's dependencies. */
function installPeers(): void {
  if (existsSync(join(PEERS, 'node_modules', '.bin', 'hive-gateway'))) return;
  console.log('installing the benchmark peers (Hive Gateway, Mesh Compose, autocannon) into bench/peers');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: PEERS, stdio: 'inherit' });
  if (result.status !== 0) throw new Error('npm ci in bench/peers failed');
}

/** Seeds the benchmark population once; later runs reuse it. */
async function seedOnce(dir: string, persons: number): Promise<Report['seeding']> {
  const existing = seedParameters(dir);
  if (existing?.persons === persons) {
    console.log(`reusing ${persons.toLocaleString('en')} seeded persons under ${dir}`);
    return null;
  }
  console.log(`seeding ${persons.toLocaleString('en')} persons under ${dir}`);
  const summary = await seedAll({ dataDir: dir, persons, seed: 1, onProgress: progressBar('seeding') });
  const records = Object.values(summary.records).reduce((sum, count) => sum + count, 0);
  return { persons, records, seconds: summary.millis / 1000, recordsPerSecond: records / (summary.millis / 1000), maxRssMiB: process.resourceUsage().maxRSS / 1024, perNode: summary.records };
}

/** Random subjects: half known to at least one node, half valid BSNs nobody knows. */
function sampleSubjects(dir: string): Subject[] {
  const ref = subjectRefs(randomBytes(32));
  const known = new Set<string>();
  for (const id of NODE_IDS) {
    const db = new Database(storeFile(dir, id), { readonly: true });
    for (const row of db.prepare('SELECT bsn FROM subjects ORDER BY random() LIMIT 1250').all() as { bsn: string }[]) known.add(row.bsn);
    db.close();
  }
  const unknown: string[] = [];
  for (let prefix = 90_000_000; unknown.length < known.size; prefix += 7) {
    const bsn = completeBsn(String(prefix));
    if (bsn) unknown.push(bsn);
  }
  return [...known, ...unknown].map((bsn) => ({ bsn, ref: ref(bsn) }));
}

async function startHive(dir: string, benchEnv: Record<string, string>, cpus: string | null): Promise<Started> {
  const supergraph = join(dir, 'supergraph.graphql');
  execFileSync(join(PEERS, 'node_modules', '.bin', 'mesh-compose'), ['-c', 'mesh.config.mjs', '-o', supergraph], {
    cwd: PEERS,
    env: { ...process.env, ...benchEnv, SOH_BENCH_SUPERGRAPH: supergraph },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const port = await freePort();
  return startProcess('hive', join(PEERS, 'node_modules', '.bin', 'hive-gateway'), ['supergraph', supergraph, '--port', String(port), '--host', '127.0.0.1', '--fork', '1', '--jit', '-c', 'gateway.config.mjs'], {
    cwd: PEERS,
    env: { ...process.env, ...benchEnv, NODE_ENV: 'production' },
    ready: /Listening on http/,
    url: `http://127.0.0.1:${port}`,
    cpus,
  });
}

/**
 * Before measuring, a target must answer known subjects correctly (sampleSubjects puts them first):
 * a fast wrong answer is no result, nor is an empty one from a target whose node calls fail.
 */
async function checkAnswers(target: Target, dir: string, subjects: Subject[]): Promise<void> {
  const token = target.callerTokens ? await signDevToken(dir, CALLERS[target.workload as Exclude<Workload, 'person'>]) : null;
  const at = new Date().toISOString();
  for (const subject of subjects.slice(0, 5)) {
    const response = await fetch(`${target.process.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: requestBody(target.workload, subject, at),
    });
    const body = (await response.json()) as { data?: Record<string, unknown> | null; errors?: unknown[] };
    if (response.status !== 200 || body.errors || !body.data || !answersKnownSubject(target.workload, body.data)) {
      throw new Error(`${target.name} does not answer correctly: HTTP ${response.status} ${JSON.stringify(body).slice(0, 500)}`);
    }
  }
}

async function measure(
  target: Target,
  options: { dir: string; subjectsFile: string; connections: number; seconds: number; leadInSeconds: number; rate?: number | undefined; nodePids: number[]; loadCpus: string | null },
): Promise<Measurement> {
  const tree = processTree(target.process.child.pid!);
  const cpu = () => ({ gateway: treeCpuMicros(tree), nodes: treeCpuMicros(options.nodePids) });
  let peakRss = treeRssBytes(tree);
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, treeRssBytes(tree))), 250);
  try {
    const load = {
      url: target.process.url,
      workload: target.workload,
      subjectsFile: options.subjectsFile,
      dataDir: options.dir,
      connections: options.rate ? Math.max(options.connections, 50) : options.connections,
      seconds: options.seconds,
      leadInSeconds: options.leadInSeconds,
      ...(options.rate ? { rate: options.rate } : {}),
      callerTokens: target.callerTokens,
    };
    // CPU counts from the moment the measured window opens to the moment the results come back.
    let before = cpu();
    const result = await runLoad(load, options.loadCpus, () => (before = cpu()));
    const after = cpu();
    // Per successful answer: failed ones cost little and would make a failing target look cheap.
    const perRequest = (micros: number) => (result.requests ? micros / result.requests : NaN);
    return {
      target: target.name,
      ...result,
      cpuMicrosPerRequest: perRequest(after.gateway - before.gateway),
      nodeCpuMicrosPerRequest: perRequest(after.nodes - before.nodes),
      peakRssMiB: peakRss / (1024 * 1024),
    };
  } finally {
    clearInterval(sampler);
  }
}

type LoadResult = Pick<Measurement, 'requests' | 'rps' | 'p50' | 'p95' | 'p99' | 'errors'>;

/** Runs bench/load.ts; it prints a `measuring` line when its measured window opens, then the results. */
function runLoad(options: Record<string, unknown>, cpus: string | null, onMeasuring: () => void): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(...pinned(cpus, process.execPath, [...nodeArgsFor('bench/load.ts'), JSON.stringify(options)]), { stdio: ['ignore', 'pipe', 'inherit'] });
    let buffered = '';
    let result: LoadResult | null = null;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (buffered + chunk).split('\n');
      buffered = lines.pop()!;
      for (const line of lines.filter(Boolean)) {
        const message = JSON.parse(line) as LoadResult | { phase: 'measuring' };
        if ('phase' in message) onMeasuring();
        else resolve((result = message));
      }
    });
    child.once('exit', (code) => {
      if (code !== 0 || !result) reject(new Error(`load generator exited with ${code}`));
    });
  });
}

function nodeScale(persons: number): Report['scale'] {
  console.log(`node lookups at ${persons.toLocaleString('en')} persons`);
  const result = spawnSync(process.execPath, [...nodeArgsFor('bench/node-scale.ts'), String(persons)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  if (result.status !== 0) throw new Error('node-scale measurement failed');
  return JSON.parse(result.stdout.trim().split('\n').pop()!);
}

/**
 * Receives the OTLP exports of every gateway with tracing on (full, policy off, audit off) and
 * counts the export requests, so that tracing costs what it costs.
 */
async function startOtlpSink(): Promise<{ url: string; exports(): number; close(): void }> {
  let exports = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      exports++;
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, exports: () => exports, close: () => server.close() };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim();
    return dirty ? `${commit} (with uncommitted changes)` : commit;
  } catch {
    return 'unknown';
  }
}

function machine(): Report['machine'] {
  return { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverage: loadavg()[0]! };
}
