import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { processTree } from '../bench/procstat.ts';
import { PARTNER_INFO } from '../lib/partners.ts';
import { soh } from './support/federation.ts';
import { type OtlpSink, startOtlpSink } from './support/otlp-sink.ts';
import { PERSONS } from './support/fixtures.ts';
import { readNodeStore } from './support/node-store.ts';

/**
 * `npm start` (`soh up`) as a user meets it: the whole federation comes up, and the example
 * requests it prints answer. Both forms are checked: from the TypeScript sources (what `npm start`
 * runs) and from the compiled build in dist/ (`npm run build`, what production and the benchmark run).
 */
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FORMS = [
  { form: 'the sources', entry: join(ROOT, 'bin/soh.js') },
  { form: 'the compiled build', entry: join(ROOT, 'dist/cli/main.js') },
];

beforeAll(async () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT });
}, 120_000);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

/** The example requests `soh up` prints: a comment line, then a curl command with token and body. */
function printedExamples(output: string): Map<string, { url: string; token: string; body: string }> {
  const examples = new Map<string, { url: string; token: string; body: string }>();
  const pattern = /^# (.+):\ncurl -s (\S+) .*Bearer ([\w.-]+)" \\\n {2}-d '(.+)'$/gm;
  for (const [, comment, url, token, body] of output.matchAll(pattern)) examples.set(comment!, { url: url!, token: token!, body: body! });
  return examples;
}

const nodePortVariable = (nodeId: string) => `SOH_NODE_PORT_${nodeId.toUpperCase().replace('-', '_')}`;

describe.each(FORMS)('soh up from $form', ({ entry }) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'soh-up-'));
  const ports: Record<string, string> = {};
  let child: ChildProcess;
  let output = '';
  let sink: OtlpSink;

  beforeAll(async () => {
    Object.assign(ports, await freshPorts());
    sink = await startOtlpSink();
    child = spawn(process.execPath, [entry, 'up', '--persons', '2000'], {
      // Started outside the checkout, as an operator would: every process it starts must find the
      // project's own modules and loader wherever the working directory is.
      cwd: dataDir,
      // A PostgreSQL URL exported for other work: soh up seeds and serves its embedded stores regardless.
      env: {
        ...process.env,
        SOH_DATA_DIR: dataDir,
        ...ports,
        SOH_NODE_DATABASE_URL: 'postgres://127.0.0.1:1/not-this-one',
        // Every span sampled, and none sent before the processes stop: what reaches the sink was sent on the way out.
        OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
        OTEL_TRACES_SAMPLER: 'always_on',
        OTEL_BSP_SCHEDULE_DELAY: '600000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`soh up did not come up: ${output}`)), 90_000);
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        if (output.includes('Ctrl-C stops everything.')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.once('exit', (code) => reject(new Error(`soh up exited with ${code}: ${output}`)));
    });
  }, 120_000);

  afterAll(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await sink.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const send = async (example: { url: string; token: string; body: string }) => {
    const response = await fetch(example.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${example.token}` },
      body: example.body,
    });
    return { status: response.status, body: (await response.json()) as { data?: Record<string, any>; errors?: unknown[] } };
  };

  it('prints where everything listens, on the ports it was given', () => {
    expect(output).toContain(`is up (dev mode)`);
    expect(output).toContain(`gateway http://127.0.0.1:${ports['SOH_GATEWAY_PORT']}/graphql`);
    for (const info of PARTNER_INFO) expect(output).toContain(`${info.nodeId} :${ports[nodePortVariable(info.nodeId)]}`);
  });

  it("answers the printed examples, and the privacy officer's example shows the ban check just made", async () => {
    const examples = printedExamples(output);
    const hitCheck = examples.get('A Veilig Thuis worker checks whether partners know the subject of a report');
    expect(hitCheck).toBeDefined();
    const hit = await send(hitCheck!);
    expect(hit.status).toBe(200);
    expect(hit.body.errors).toBeUndefined();
    expect(hit.body.data!['hitCheck']).toMatchObject({ complete: true, anyHit: true });

    const bans = await send(examples.get('A police officer checks for active bans, and whether this location violates one')!);
    expect(bans.body.data!['activeBans']).toMatchObject({ complete: true, underActiveBan: true });

    const review = await send(examples.get("The police privacy officer reviews every access to that person")!);
    expect(review.body.errors).toBeUndefined();
    const accesses = review.body.data!['accessLog'].edges.map((edge: { node: Record<string, unknown> }) => edge.node);
    expect(accesses).toContainEqual(expect.objectContaining({ purpose: 'police-ban-enforcement', decision: 'ALLOW', outcome: 'ALLOWED' }));
  });

  // Last: it stops the federation.
  it('stops the gateway and every node on Ctrl-C, which reaches `soh up` alone or twice at once (npm start), and sends their last spans', async () => {
    const listening = () =>
      Promise.all(
        Object.values(ports).map((port) =>
          fetch(`http://127.0.0.1:${port}/healthz`).then(
            () => true,
            () => false,
          ),
        ),
      );
    expect(await listening()).toEqual(Object.values(ports).map(() => true));
    expect(sink.spans).toEqual([]);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Under `npm start` one Ctrl-C arrives twice: from the terminal and forwarded by npm.
    child.kill('SIGINT');
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).not.toContain('did not stop cleanly');
    expect(await listening()).toEqual(Object.values(ports).map(() => false));
    // The requests above were traced; their spans left on the way out.
    const sent = new Set(sink.spans.map((span) => `${span.service} ${span.name}`));
    expect(sent).toContain('soh-gateway gateway.request');
    expect(sent).toContain('soh-politie node.request politie');
    expect(sink.rejected).toEqual([]);
  });
});

/** soh up with fresh ports and data (`prepare` may put some there first), from the sources; `output` collects what it prints. */
async function startUp(ports: Record<string, string>, prepare: (dataDir: string) => Promise<void> = async () => {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'soh-up-trouble-'));
  await prepare(dataDir);
  const child = spawn(process.execPath, [FORMS[0]!.entry, 'up', '--persons', '2000'], {
    cwd: dataDir,
    env: { ...process.env, SOH_DATA_DIR: dataDir, ...ports },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Every process it starts, noted while it runs: once it has exited, its orphans are no longer
  // found under its pid, and a leaked node would pass any look for children then.
  const started = new Set<number>();
  const watch = setInterval(() => {
    for (const { pid } of childrenOf(child.pid!)) started.add(pid);
  }, 100);
  const run = { child, output: '', exited: new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))) };
  void run.exited.then(() => clearInterval(watch));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (run.output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (run.output += chunk));
  /** The processes it started, as far as seen, that still run. */
  const survivors = () => [...started].filter(alive);
  // Whatever the test found, nothing it started outlives it.
  const cleanUp = () => {
    clearInterval(watch);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const pid of survivors()) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  };
  return Object.assign(run, { cleanUp, survivors, started });
}

/** Once `soh up` says it is up, runs `check`, then stops it with one Ctrl-C, which must end it cleanly. */
async function whileUp(up: Awaited<ReturnType<typeof startUp>>, check: () => void): Promise<void> {
  try {
    await vi.waitFor(() => expect(up.output).toContain('Ctrl-C stops everything.'), { timeout: 90_000, interval: 200 });
    check();
    up.child.kill('SIGINT');
    expect(await up.exited).toBe(0);
    expect(up.survivors()).toEqual([]);
  } finally {
    up.cleanUp();
  }
}

/** One politie person in a data directory, imported as a user would with `soh import`. */
async function importOnePerson(dataDir: string): Promise<void> {
  const file = join(dataDir, 'politie.ndjson');
  writeFileSync(file, `${JSON.stringify({ type: 'person', bsn: PERSONS.subject })}\n`);
  expect((await soh(['import', 'politie', file], { SOH_DATA_DIR: dataDir })).code).toBe(0);
}

async function freshPorts(): Promise<Record<string, string>> {
  const ports: Record<string, string> = { SOH_GATEWAY_PORT: String(await freePort()) };
  for (const info of PARTNER_INFO) ports[nodePortVariable(info.nodeId)] = String(await freePort());
  return ports;
}

/** The processes `soh up` started, by the command each runs. */
function childrenOf(pid: number): { pid: number; command: string }[] {
  return processTree(pid)
    .slice(1)
    .flatMap((child) => {
      try {
        return [{ pid: child, command: readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') }];
      } catch {
        return [];
      }
    });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('soh up when something is wrong', () => {
  it("never says it is up when a node's port is held by another process that answers, and stops everything", async () => {
    const ports = await freshPorts();
    // A stale process on politie's port that answers 200 to anything, /healthz included.
    const impostor = createHttpServer((_request, response) => response.end('{}'));
    await new Promise<void>((resolve) => impostor.listen(Number(ports[nodePortVariable('politie')]), '127.0.0.1', resolve));
    const up = await startUp(ports);
    try {
      expect(await up.exited).toBe(1);
      expect(up.output).toContain('soh up: politie stopped (exit 1) before the federation was up; stopping the federation');
      expect(up.output).not.toContain('is up');
      expect(up.started.size).toBeGreaterThan(0);
      expect(up.survivors()).toEqual([]);
    } finally {
      await new Promise((resolve) => impostor.close(resolve));
      up.cleanUp();
    }
  }, 120_000);

  it.each([
    ['SOH_GATEWAY_PORT', 'abc', /SOH_GATEWAY_PORT/],
    ['SOH_GATEWAY_PORT', '', /SOH_GATEWAY_PORT is set but empty/],
    ['SOH_NODE_PORT_OM', '0', /SOH_NODE_PORT_OM/],
    ['OTEL_TRACES_SAMPLER', 'parentbased_traceidratioo', /OTEL_TRACES_SAMPLER/],
  ])('refuses %s=%j before it seeds or starts anything', async (variable, value, reason) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'soh-up-port-'));
    try {
      const { code, stdout, stderr } = await soh(['up'], { SOH_DATA_DIR: dataDir, ...(await freshPorts()), [variable]: value });
      expect(code).toBe(1);
      expect(stderr).toMatch(reason);
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(stdout).not.toContain('seeding');
      expect(existsSync(join(dataDir, 'nodes'))).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('seeds nothing over records a user imported into one store, and serves them', async () => {
    let dataDir = '';
    const up = await startUp(await freshPorts(), async (dir) => {
      dataDir = dir;
      await importOnePerson(dir);
    });
    await whileUp(up, () => {
      expect(up.output).toContain('the stores of politie under');
      expect(up.output).not.toContain('seeding');
      expect(readNodeStore(dataDir, 'politie')!.subjects.map((subject) => subject.bsn)).toEqual([PERSONS.subject]);
    });
  }, 120_000);

  it('seeds again over the half-written stores of a seed that did not finish', async () => {
    const up = await startUp(await freshPorts(), async (dataDir) => {
      await importOnePerson(dataDir);
      writeFileSync(join(dataDir, 'seed.unfinished'), '');
    });
    await whileUp(up, () => expect(up.output).toContain('an earlier seed did not finish'));
  }, 120_000);

  it('kills, on a second Ctrl-C, a component that cannot stop', async () => {
    const up = await startUp(await freshPorts());
    try {
      await vi.waitFor(() => expect(up.output).toContain('Ctrl-C stops everything.'), { timeout: 90_000, interval: 200 });
      const children = childrenOf(up.child.pid!);
      const om = children.find(({ command }) => command.endsWith(' node om'))!;
      expect(om).toBeDefined();
      process.kill(om.pid, 'SIGSTOP');
      up.child.kill('SIGINT');
      // Beyond SAME_SIGNAL_MS: a second Ctrl-C, not the first one delivered twice.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(alive(om.pid)).toBe(true);
      up.child.kill('SIGINT');
      // Killed, om may have left requests unaudited: soh up says so and fails.
      expect(await up.exited).toBe(1);
      expect(up.output).toContain('soh up: om did not stop cleanly');
      for (const { pid } of children) expect(alive(pid), String(pid)).toBe(false);
    } finally {
      up.cleanUp();
    }
  }, 120_000);
});
