import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type KeyObject, generateKeyPairSync, randomUUID } from 'node:crypto';
import { SignJWT, exportJWK } from 'jose';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { gatewayConfig, type GatewayConfig, type GatewaySettings } from '../../gateway/config.ts';
import { GatewayKeys } from '../../gateway/auth/gateway-keys.ts';
import { type RunningGateway, startGateway } from '../../gateway/start.ts';
import { NODE_IDS, type NodeId } from '../../lib/partners.ts';
import { startTelemetry, stopTelemetry } from '../../lib/telemetry.ts';
import { FIXTURES, ndjson } from './fixtures.ts';
import { type OtlpSink, startOtlpSink } from './otlp-sink.ts';

const SOH = fileURLToPath(new URL('../../bin/soh.js', import.meta.url));
const run = promisify(execFile);

/** Runs the `soh` CLI as a user would, in its own process. */
export async function soh(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [SOH, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** A test identity provider: its own key and JWKS file, bound to the organisations the test says. */
export class TestIssuer {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly kid = `test-${randomUUID().slice(0, 8)}`;

  constructor(
    readonly issuer: string,
    readonly orgs: string[],
    readonly jwksFile: string,
  ) {
    ({ privateKey: this.privateKey, publicKey: this.publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' }));
  }

  async writeJwks(): Promise<void> {
    const jwk = { ...(await exportJWK(this.publicKey)), kid: this.kid, alg: 'ES256', use: 'sig' };
    writeFileSync(this.jwksFile, JSON.stringify({ keys: [jwk] }));
  }

  /** A valid caller token; `claims` overrides or (with undefined) removes claims, `header` the JOSE header. */
  async token(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = {
      iss: this.issuer,
      aud: 'soh-gateway',
      sub: 'worker-1',
      org: 'politie',
      roles: ['politie-medewerker'],
      purpose: 'police-ban-enforcement',
      case_ref: 'PL-2026-0001',
      iat: now,
      exp: now + 300,
      jti: randomUUID(),
      ...claims,
    };
    for (const key of Object.keys(payload)) if (payload[key] === undefined) delete payload[key];
    return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: this.kid, ...header }).sign(this.privateKey);
  }
}

export interface NodeProcess {
  id: NodeId;
  url: string;
  process: ChildProcess;
}

export interface Federation {
  dataDir: string;
  gatewayUrl: string;
  gateway: RunningGateway;
  nodes: Record<NodeId, NodeProcess>;
  /** Trusted for every organisation. */
  issuer: TestIssuer;
  /** Trusted only for `politie`. */
  politieIssuer: TestIssuer;
  /** POSTs a GraphQL document with a bearer token to the gateway. */
  query(token: string | null, query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; body: GraphQLBody }>;
  stop(): Promise<void>;
}

export interface GraphQLBody {
  data?: Record<string, any> | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, any> }[];
}

export async function startNodeProcess(id: NodeId, env: NodeJS.ProcessEnv): Promise<NodeProcess> {
  // From outside the checkout: a node must not depend on the working directory to find its modules.
  const child = spawn(process.execPath, [SOH, 'node', id], { cwd: tmpdir(), env: { ...process.env, ...env, SOH_NODE_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${id} did not start: ${output}`));
    }, 60_000);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.once('exit', (code) => reject(new Error(`node ${id} exited with ${code}: ${output}`)));
  });
  return { id, url, process: child };
}

export function stopNode(node: NodeProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (node.process.exitCode !== null || node.process.signalCode !== null) return resolve();
    node.process.once('exit', () => resolve());
    node.process.kill('SIGCONT');
    node.process.kill('SIGTERM');
  });
}

export interface FederationOptions {
  deadlineMs?: number;
  fixtures?: Record<NodeId, object[]>;
  exporter?: SpanExporter;
  /** Gateway settings; `nodes` replaces the started nodes' URLs one by one. */
  gateway?: Partial<Omit<GatewaySettings, 'nodes'>> & { nodes?: Partial<GatewayConfig['nodes']> };
  nodeEnv?: NodeJS.ProcessEnv;
}

const START_ATTEMPTS = 3;

/**
 * The whole federation on free loopback ports: four node processes importing the fixtures through
 * `soh import`, and the gateway in this process (so tests can read its traces). Never the default
 * ports, so the suite runs beside a federation a user has running. On a busy machine a node may
 * miss its start-up timeout: a start that does not come up whole leaves nothing running or on
 * disk, and is tried again.
 */
export async function startFederation(options: FederationOptions = {}): Promise<Federation> {
  if (options.exporter) startTelemetry('gateway', { exporter: options.exporter });
  for (let attempt = 1; ; attempt++) {
    try {
      return await startFederationOnce(options);
    } catch (error) {
      if (attempt === START_ATTEMPTS) throw error;
    }
  }
}

async function startFederationOnce(options: FederationOptions): Promise<Federation> {
  const dataDir = mkdtempSync(join(tmpdir(), 'soh-test-'));
  const started: NodeProcess[] = [];
  let gateway: RunningGateway;
  let issuer: TestIssuer;
  let politieIssuer: TestIssuer;
  try {
    mkdirSync(join(dataDir, 'idp'));
    const env = { SOH_DATA_DIR: dataDir, OTEL_TRACES_SAMPLER: 'always_on', ...options.nodeEnv };
    const fixtures = options.fixtures ?? FIXTURES;
    // Every import ends before a failure is raised, so that none still writes into a removed directory.
    const imports = await Promise.allSettled(
      NODE_IDS.map(async (id) => {
        const file = join(dataDir, `${id}.ndjson`);
        writeFileSync(file, ndjson(fixtures[id]));
        const result = await soh(['import', id, file], env);
        if (result.code !== 0) throw new Error(`import into ${id} failed: ${result.stderr}`);
      }),
    );
    const failedImport = imports.find((outcome) => outcome.status === 'rejected');
    if (failedImport) throw failedImport.reason;
    // The gateway's keys exist before any node starts, so nodes can take its JWKS from a file.
    const keys = new GatewayKeys(dataDir);
    const jwksFile = join(dataDir, 'gateway-jwks.json');
    writeFileSync(jwksFile, JSON.stringify(keys.jwks()));
    // Every start settles before a failure is raised, so that no node is still coming up unseen
    // when the others are stopped.
    const starts = await Promise.allSettled(NODE_IDS.map((id) => startNodeProcess(id, { ...env, SOH_GATEWAY_JWKS_FILE: jwksFile })));
    for (const start of starts) if (start.status === 'fulfilled') started.push(start.value);
    const failed = starts.find((start) => start.status === 'rejected');
    if (failed) throw failed.reason;

    issuer = new TestIssuer('https://idp.test.example', ['*'], join(dataDir, 'idp', 'all.json'));
    politieIssuer = new TestIssuer('https://idp.politie.test.example', ['politie'], join(dataDir, 'idp', 'politie.json'));
    await Promise.all([issuer.writeJwks(), politieIssuer.writeJwks()]);
    // Node URLs the test gives replace those of the started nodes one by one.
    const { nodes: nodeUrls, ...gatewayOptions } = options.gateway ?? {};
    const config = gatewayConfig.parse({
      port: 0,
      dataDir,
      policyDir: fileURLToPath(new URL('../../policies/', import.meta.url)),
      issuers: [
        { issuer: issuer.issuer, orgs: issuer.orgs, jwksFile: issuer.jwksFile },
        { issuer: politieIssuer.issuer, orgs: politieIssuer.orgs, jwksFile: politieIssuer.jwksFile },
      ],
      deadlineMs: options.deadlineMs ?? 5_000,
      ...gatewayOptions,
      nodes: { ...Object.fromEntries(started.map((node) => [node.id, node.url])), ...nodeUrls },
    });
    gateway = await startGateway(config);
  } catch (error) {
    await Promise.all(started.map(stopNode));
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const nodes = Object.fromEntries(started.map((node) => [node.id, node])) as Record<NodeId, NodeProcess>;
  const gatewayUrl = gateway.url;

  return {
    dataDir,
    gatewayUrl,
    gateway,
    nodes,
    issuer,
    politieIssuer,
    async query(token, query, variables, headers = {}) {
      const response = await fetch(`${gatewayUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
        body: JSON.stringify({ query, variables }),
      });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : {} };
    },
    async stop() {
      await gateway.close();
      await Promise.all(Object.values(nodes).map(stopNode));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TracedFederation {
  federation: Federation;
  /** Where the node processes export their spans (OTLP/HTTP). */
  sink: OtlpSink;
  stop(): Promise<void>;
}

/**
 * The federation with every request sampled, as the tracing tests need it: the gateway's spans
 * (in this process) go to `exporter`, the nodes' over OTLP to a local sink. The deadline is
 * generous, so that every node answers and each trace is whole on a busy machine too.
 */
export async function startTracedFederation(exporter: SpanExporter): Promise<TracedFederation> {
  const savedSampler = process.env['OTEL_TRACES_SAMPLER'];
  const restoreSampler = () => {
    if (savedSampler === undefined) delete process.env['OTEL_TRACES_SAMPLER'];
    else process.env['OTEL_TRACES_SAMPLER'] = savedSampler;
  };
  process.env['OTEL_TRACES_SAMPLER'] = 'always_on';
  let sink: OtlpSink | undefined;
  let federation: Federation;
  try {
    sink = await startOtlpSink();
    federation = await startFederation({
      exporter,
      deadlineMs: 10_000,
      nodeEnv: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' },
    });
  } catch (error) {
    await sink?.close();
    await stopTelemetry();
    restoreSampler();
    throw error;
  }
  return {
    federation,
    sink,
    async stop() {
      await federation.stop();
      await sink.close();
      await stopTelemetry();
      restoreSampler();
    },
  };
}
