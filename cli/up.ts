import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'undici';
import { nodeUrlVariable } from '../gateway/config.ts';
import { dataDir } from '../lib/config.ts';
import { signDevToken } from '../lib/dev-issuer.ts';
import { GATEWAY_NODE_FLAGS, SOURCE_NODE_FLAGS, serviceEnv, sohArgs } from '../lib/project.ts';
import { PARTNER_INFO, nodeVariableSuffix } from '../lib/partners.ts';
import { findExamples } from '../nodes/seed-examples.ts';
import { seedAll, seedParameters, storesSeeded } from '../nodes/seed-all.ts';
import { progressBar } from './progress.ts';
import { parseOptions, positiveInt } from './usage.ts';

async function waitHealthy(url: string, child: ChildProcess, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
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

function start(name: string, args: string[], env: NodeJS.ProcessEnv, nodeFlags: readonly string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeFlags, ...sohArgs(), ...args], { env: serviceEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const prefix = (line: string) => `[${name}] ${line}`;
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => process.stdout.write(chunk.trimEnd().split('\n').map(prefix).join('\n') + '\n'));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => process.stderr.write(chunk.trimEnd().split('\n').map(prefix).join('\n') + '\n'));
  return child;
}

/**
 * `soh up` (= `npm start`): the whole federation on this machine, each node and the gateway its
 * own process, on embedded stores seeded with synthetic data when empty; dev issuer enabled.
 */
export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(args, { persons: { type: 'string' }, seed: { type: 'string' } });
  const started = Date.now();
  const dir = dataDir();
  if (!(await storesSeeded(dir))) {
    const persons = positiveInt(values.persons, 'persons', 10_000);
    const seed = positiveInt(values.seed, 'seed', 1);
    console.log(`no data yet under ${dir}: seeding ${persons.toLocaleString('en')} synthetic persons`);
    await seedAll({ dataDir: dir, persons, seed, onProgress: progressBar('seeding') });
  }
  // The stores it seeds are the embedded ones: a PostgreSQL URL exported for other work would
  // have the nodes serve a database it never seeded.
  const { SOH_NODE_DATABASE_URL: _elsewhere, ...inherited } = process.env;
  const env = { ...inherited, SOH_DATA_DIR: dir };
  const gatewayPort = Number(process.env['SOH_GATEWAY_PORT'] ?? 4000);
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const children: { name: string; child: ChildProcess; url: string }[] = [];
  let stopping = false;
  const stop = (names: (name: string) => boolean) =>
    Promise.all(
      children
        .filter(({ name, child }) => names(name) && child.exitCode === null && child.signalCode === null)
        .map(({ child }) => {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          return exited;
        }),
    );
  // The gateway first: it answers what it has in flight while the nodes are still there to ask.
  const stopAll = async () => {
    stopping = true;
    await stop((name) => name === 'gateway');
    await stop((name) => name !== 'gateway');
  };
  let signals = 0;
  const onSignal = () => {
    // A second Ctrl-C skips the order: everything still running is told to stop now.
    if (++signals > 1) void stop(() => true);
    else void stopAll().then(() => process.exit(0));
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
    const port = Number(process.env[`SOH_NODE_PORT_${nodeVariableSuffix(info.nodeId)}`] ?? info.defaultPort);
    const url = `http://127.0.0.1:${port}`;
    nodeUrls[nodeUrlVariable(info.nodeId)] = url;
    children.push({
      name: info.nodeId,
      url,
      child: start(info.nodeId, ['node', info.nodeId], { ...env, SOH_NODE_PORT: String(port), SOH_GATEWAY_JWKS_URL: `${gatewayUrl}/.well-known/jwks.json` }, SOURCE_NODE_FLAGS),
    });
  }
  children.push({ name: 'gateway', url: gatewayUrl, child: start('gateway', ['gateway'], { ...env, ...nodeUrls, SOH_DEV: '1', SOH_GATEWAY_PORT: String(gatewayPort) }, GATEWAY_NODE_FLAGS) });
  try {
    await Promise.all(children.map(({ name, child, url }) => waitHealthy(url, child, name)));
  } catch (error) {
    console.error(`soh up: ${(error as Error).message}; stopping`);
    await stopAll();
    process.exit(1);
  }
  for (const { child, name } of children) {
    child.once('exit', (code) => {
      if (stopping) return;
      console.error(`soh up: ${name} stopped (exit ${code}); stopping the federation`);
      void stopAll().then(() => process.exit(1));
    });
  }
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
