import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'undici';
import { z } from 'zod';
import { LONGEST_GATEWAY_STOP_MS, nodeUrlVariable } from '../gateway/config.ts';
import { dataDir, parseConfig, port, settings } from '../lib/config.ts';
import { signDevToken } from '../lib/dev-issuer.ts';
import { GATEWAY_NODE_FLAGS, SOURCE_NODE_FLAGS, serviceEnv, sohArgs } from '../lib/project.ts';
import { NODE_IDS, PARTNER_INFO, nodeVariableSuffix } from '../lib/partners.ts';
import { findExamples } from '../nodes/seed-examples.ts';
import { seedAll, seedParameters, seedUnfinished, storesHoldingData } from '../nodes/seed-all.ts';
import { MAX_SEED_PERSONS } from '../nodes/runtime/seed.ts';
import { progressBar } from './progress.ts';
import { checkTelemetrySettings } from '../lib/telemetry.ts';
import { SAME_SIGNAL_MS } from './signals.ts';
import { parseOptions, positiveInt } from './usage.ts';

/**
 * Beyond the longest a component takes to stop on its own (a node: two grace periods of 5 s; the
 * gateway: two of its deadline and a second, at the longest deadline it allows) and to send its
 * spans: killed before, a gateway still draining would lose the records of its last answers.
 */
export const KILL_AFTER_MS = LONGEST_GATEWAY_STOP_MS + 5_000;

/** Settings of a component run on its own that `soh up` does not pass on to the processes it starts. */
const NOT_INHERITED = ['SOH_NODE_DATABASE_URL', 'SOH_GATEWAY_JWKS_FILE', 'SOH_BENCH_DISABLE'] as const;

interface Child {
  name: string;
  url: string;
  child: ChildProcess;
  /** Settles when the process says it listens: until then, whatever answers on its port is not it. */
  listening: Promise<void>;
}

/**
 * Up once the child itself says it listens and then answers /healthz. The probe alone could be
 * answered by another process on the port (a node left over from an earlier run, say) while the
 * child fails to listen; the child's exit is watched from its start (run, below).
 */
async function waitHealthy({ url, child, name, listening }: Child, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    listening,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${name} did not start listening within ${timeoutMs / 1000} s`)), timeoutMs))),
  ]).finally(() => clearTimeout(timer));
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode}`);
    try {
      // undici's request, not fetch(): fetch refuses some ports (6000, 6665–6669, …) outright.
      const { statusCode, body } = await request(`${url}/healthz`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
      await body.dump();
      if (statusCode === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${name} did not become healthy within ${timeoutMs / 1000} s`);
}

function start(name: string, url: string, args: string[], env: NodeJS.ProcessEnv, nodeFlags: readonly string[] = []): Child {
  const child = spawn(process.execPath, [...nodeFlags, ...sohArgs(), ...args], { env: serviceEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const prefix = (line: string) => `[${name}] ${line}`;
  let said = '';
  // On its own port, whichever host it binds (SOH_GATEWAY_HOST, SOH_NODE_HOST).
  const saysListening = new RegExp(` listening on http://\\S+:${new URL(url).port}(?!\\d)`);
  const listening = new Promise<void>((resolve) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      process.stdout.write(chunk.trimEnd().split('\n').map(prefix).join('\n') + '\n');
      said = (said + chunk).slice(-1_000);
      if (saysListening.test(said)) resolve();
    });
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => process.stderr.write(chunk.trimEnd().split('\n').map(prefix).join('\n') + '\n'));
  return { name, url, child, listening };
}

/**
 * A port `soh up` is given (or its default), checked as the components check theirs, before
 * anything starts. 0 is refused too: `soh up` must know where each process listens.
 */
function portSetting(name: string, fallback: number): number {
  const value = settings(process.env, [name])[name];
  return parseConfig(z.object({ [name]: port.min(1) }), { [name]: value ?? fallback }, 'the environment')[name] as number;
}

/**
 * `soh up` (= `npm start`): the whole federation on this machine, each node and the gateway its
 * own process, on embedded stores seeded with synthetic data when empty; dev issuer enabled.
 */
export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(args, { persons: { type: 'string' }, seed: { type: 'string' } });
  const started = Date.now();
  const dir = dataDir();
  // Every setting is checked before anything is seeded or started.
  const gatewayPort = portSetting('SOH_GATEWAY_PORT', 4000);
  const nodePorts = Object.fromEntries(PARTNER_INFO.map((info) => [info.nodeId, portSetting(`SOH_NODE_PORT_${nodeVariableSuffix(info.nodeId)}`, info.defaultPort)]));
  const persons = positiveInt(values.persons, 'persons', 10_000, MAX_SEED_PERSONS);
  const seed = positiveInt(values.seed, 'seed', 1);
  // What every process it starts would refuse, refused before any of them is seeded for.
  checkTelemetrySettings(process.env);
  // Seeding replaces all four stores: it runs only when none holds anything, never over records a
  // user imported into one of them (`soh seed` replaces them when asked to).
  const holding = await storesHoldingData(dir);
  if (holding.length === 0 || seedUnfinished(dir)) {
    const why = holding.length === 0 ? 'no data yet' : 'an earlier seed did not finish';
    console.log(`${why} under ${dir}: seeding ${persons.toLocaleString('en')} synthetic persons`);
    await seedAll({ dataDir: dir, persons, seed, onProgress: progressBar('seeding') });
  } else if (holding.length < NODE_IDS.length) {
    console.log(`the stores of ${holding.join(', ')} under ${dir} hold data: nothing is seeded, so that nothing is replaced (npx soh seed regenerates all four)`);
  }
  // The stores it seeds are the embedded ones: a PostgreSQL URL exported for other work would
  // have the nodes serve a database it never seeded.
  // Nor may settings meant for a component run on its own change the federation up starts: other
  // keys for the gateway would have every node refuse it, and the benchmark's switches would run
  // it without purpose binding and audit.
  const inherited = { ...process.env };
  for (const name of NOT_INHERITED) {
    if (inherited[name] === undefined) continue;
    if (name !== 'SOH_NODE_DATABASE_URL') console.log(`soh up: ignoring ${name}, which applies to a component run on its own`);
    delete inherited[name];
  }
  const env = { ...inherited, SOH_DATA_DIR: dir };
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const children: Child[] = [];
  let stopping = false;
  const stop = (names: (name: string) => boolean, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') =>
    Promise.all(
      children
        .filter(({ name, child }) => names(name) && child.exitCode === null && child.signalCode === null)
        .map(({ name, child }) => {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill(signal);
          // One that cannot stop (its event loop blocked, the process stopped) is killed.
          const kill = setTimeout(() => {
            console.error(`soh up: ${name} did not stop within ${KILL_AFTER_MS / 1000} s; killing it`);
            child.kill('SIGKILL');
          }, KILL_AFTER_MS);
          return exited.finally(() => clearTimeout(kill));
        }),
    );
  // The gateway first: it answers what it has in flight while the nodes are still there to ask.
  const stopAll = async () => {
    stopping = true;
    await stop((name) => name === 'gateway');
    await stop((name) => name !== 'gateway');
  };
  let firstSignalAt: number | null = null;
  // Children that did not end cleanly while being stopped: their last requests may not be audited.
  const unclean: string[] = [];
  const onSignal = () => {
    if (firstSignalAt === null) {
      firstSignalAt = Date.now();
      void stopAll().then(() => {
        if (unclean.length) console.error(`soh up: ${unclean.join(', ')} did not stop cleanly`);
        process.exit(unclean.length ? 1 : 0);
      });
    } else if (Date.now() - firstSignalAt >= SAME_SIGNAL_MS) {
      // A second Ctrl-C skips the order and the waiting: everything still running is killed now.
      void stop(() => true, 'SIGKILL');
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  // The children run in process groups of their own, so that a terminal's Ctrl-C reaches this
  // process alone and the order above holds. If it exits for another reason (an error), they are
  // stopped with it; a signal it cannot catch (SIGKILL) leaves them running.
  process.once('exit', () => {
    for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });

  const nodeUrls: Record<string, string> = {};
  for (const info of PARTNER_INFO) {
    const port = nodePorts[info.nodeId];
    const url = `http://127.0.0.1:${port}`;
    nodeUrls[nodeUrlVariable(info.nodeId)] = url;
    children.push(start(info.nodeId, url, ['node', info.nodeId], { ...env, SOH_NODE_PORT: String(port), SOH_GATEWAY_JWKS_URL: `${gatewayUrl}/.well-known/jwks.json` }, SOURCE_NODE_FLAGS));
  }
  children.push(start('gateway', gatewayUrl, ['gateway'], { ...env, ...nodeUrls, SOH_DEV: '1', SOH_GATEWAY_PORT: String(gatewayPort) }, GATEWAY_NODE_FLAGS));
  // Watched from the start: one that exits while the others come up (its port taken, say) stops
  // everything, before anything is said to be up.
  let up = false;
  for (const { child, name } of children) {
    child.once('exit', (code, signal) => {
      if (stopping) {
        // Stopped before it had started serving, it left nothing half done.
        if (code !== 0 && (up || signal === 'SIGKILL')) unclean.push(name);
        return;
      }
      console.error(`soh up: ${name} stopped (${code === null ? `signal ${signal}` : `exit ${code}`})${up ? '' : ' before the federation was up'}; stopping the federation`);
      void stopAll().then(() => process.exit(1));
    });
  }
  try {
    await Promise.all(children.map((child) => waitHealthy(child)));
  } catch (error) {
    if (stopping) return;
    console.error(`soh up: ${(error as Error).message}; stopping`);
    await stopAll();
    process.exit(1);
  }
  if (stopping) return;
  up = true;
  await printExamples(dir, gatewayUrl, children.filter(({ name }) => name !== 'gateway'), Date.now() - started);
}

async function printExamples(dir: string, gatewayUrl: string, nodes: readonly { name: string; url: string }[], millis: number): Promise<void> {
  const params = seedParameters(dir);
  const examples = params ? findExamples(params, Date.now()) : { hitBsn: null, locationBan: null, contactBan: null };
  const vt = await signDevToken(dir, { org: 'veilig-thuis-haaglanden', roles: ['vt-medewerker'], purpose: 'vt-hit-check', caseRef: 'VT-2026-000123', ttlSeconds: 3600 });
  const police = await signDevToken(dir, { org: 'politie', roles: ['politie-medewerker'], purpose: 'police-ban-enforcement', caseRef: 'PL-2026-4711', ttlSeconds: 3600 });
  const officer = await signDevToken(dir, { org: 'politie', roles: ['privacy-officer'], purpose: 'privacy-audit', ttlSeconds: 3600 });
  const curl = (token: string, query: string) =>
    `curl -s ${gatewayUrl}/graphql -H 'content-type: application/json' -H "authorization: Bearer ${token}" \\\n  -d '${JSON.stringify({ query })}'`;
  const hit = examples.hitBsn ?? '123456782';
  const banned = examples.locationBan?.bsn ?? examples.contactBan?.bsn ?? '123456782';
  const where = examples.locationBan?.inside ?? { lat: 51.92, lon: 4.48 };
  const lines = [
    '',
    `Samen onder Handbereik is up (dev mode) in ${(millis / 1000).toFixed(1)} s: gateway ${gatewayUrl}/graphql`,
    `  nodes: ${nodes.map(({ name, url }) => `${name} :${new URL(url).port}`).join(', ')}   audit viewer: ${gatewayUrl}/audit   data: ${dir}`,
    '',
    '# A Veilig Thuis worker checks whether partners know the subject of a report:',
    curl(vt, `{ hitCheck(subject: {bsn: "${hit}"}) { subjectRef complete anyHit partners { partner status contact { organisation unit phone } } } }`),
    '',
    '# A police officer checks for active bans, and whether this location violates one:',
    curl(police, `{ activeBans(subject: {bsn: "${banned}"}, location: {lat: ${where.lat}, lon: ${where.lon}}) { complete underActiveBan bans { id kind legalBasis imposedBy reportedBy validUntil conditions area { description municipality } violatedAt notify { organisation phone } } partners { partner status } } }`),
  ];
  if (examples.contactBan) {
    lines.push('', '# ... and whether the subject may contact a given person:');
    lines.push(curl(police, `{ contactBanned(subject: {bsn: "${examples.contactBan.bsn}"}, counterpart: {bsn: "${examples.contactBan.protectedBsn}"}) { complete banned banIds } }`));
  }
  lines.push('', "# The police privacy officer reviews every access to that person:");
  lines.push(curl(officer, `{ accessLog(filter: {subjectBsn: "${banned}"}) { edges { node { traceId time requester { org sub } purpose legalBasis decision outcome partners { partner status } } } } }`));
  lines.push('', 'More tokens: npx soh token --org politie --role politie-medewerker --purpose police-ban-enforcement --case-ref PL-1', 'Ctrl-C stops everything.', '');
  console.log(lines.join('\n'));
}
