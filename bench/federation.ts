import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { GatewayKeys } from '../gateway/auth/gateway-keys.ts';
import { nodeUrlVariable } from '../gateway/config.ts';
import { NODE_IDS, type NodeId } from '../lib/partners.ts';
import { GATEWAY_NODE_FLAGS, SOURCE_NODE_FLAGS, nodeArgsFor, serviceEnv, sohArgs } from '../lib/project.ts';
import { pinned } from './cpus.ts';

/** A process the benchmark started, with the URL it printed when ready. */
export interface Started {
  name: string;
  url: string;
  child: ChildProcess;
}

/** Spawns a process (on `cpus`, if given: ./cpus.ts) and waits for the line that says where it listens. */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; ready: RegExp; timeoutMs?: number; url?: string; cpus?: string | null },
): Promise<Started> {
  const child = spawn(...pinned(options.cpus ?? null, command, args), { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${(options.timeoutMs ?? 60_000) / 1000} s: ${output.slice(-2000)}`));
    }, options.timeoutMs ?? 60_000);
    const onData = (chunk: string) => {
      output = (output + chunk).slice(-20_000);
      const match = options.ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ name, url: options.url ?? match[1]!, child });
      }
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.stderr!.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}: ${output.slice(-2000)}`));
    });
  });
}

export function stopProcess(started: Started | undefined): Promise<void> {
  if (!started || started.child.exitCode !== null || started.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => started.child.kill('SIGKILL'), 5_000);
    started.child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    started.child.kill('SIGTERM');
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Waits for every process of `starting`; if one fails, stops those that did start and rethrows,
 * so that no process outlives the benchmark that could not use it.
 */
export async function startAll(starting: readonly Promise<Started>[]): Promise<Started[]> {
  const settled = await Promise.allSettled(starting);
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  const started = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  if (failed) {
    await Promise.all(started.map(stopProcess));
    throw failed.reason;
  }
  return started;
}

/** The four nodes on free loopback ports, trusting the gateway keys under `dataDir`. */
export async function startNodes(dataDir: string): Promise<Record<NodeId, Started>> {
  const jwksFile = join(dataDir, 'gateway-jwks.json');
  writeFileSync(jwksFile, JSON.stringify(new GatewayKeys(dataDir).jwks()));
  const env = serviceEnv({ ...process.env, SOH_DATA_DIR: dataDir, SOH_NODE_PORT: '0', SOH_GATEWAY_JWKS_FILE: jwksFile });
  const nodes = await startAll(
    NODE_IDS.map((id) => startProcess(id, process.execPath, [...SOURCE_NODE_FLAGS, ...sohArgs(), 'node', id], { env, ready: /listening on (http:\/\/[\d.:]+)/ })),
  );
  return Object.fromEntries(nodes.map((node, index) => [NODE_IDS[index], node])) as Record<NodeId, Started>;
}

export function nodeUrlEnv(nodes: Record<NodeId, Started>): Record<string, string> {
  return Object.fromEntries(NODE_IDS.map((id) => [nodeUrlVariable(id), nodes[id].url]));
}

/** Our gateway as its own process (`soh gateway`) with its production settings, dev mode so that the dev issuer signs callers. */
export function startOurGateway(name: string, dataDir: string, nodes: Record<NodeId, Started>, env: NodeJS.ProcessEnv, cpus: string | null = null): Promise<Started> {
  return startProcess(name, process.execPath, [...GATEWAY_NODE_FLAGS, ...sohArgs(), 'gateway'], {
    env: serviceEnv({ ...process.env, ...nodeUrlEnv(nodes), SOH_DATA_DIR: dataDir, SOH_DEV: '1', SOH_GATEWAY_PORT: '0', ...env }),
    ready: /gateway listening on (http:\/\/[\d.:]+)/,
    cpus,
  });
}

/**
 * A second data directory for the gateway measured without audit: the same gateway keys (which
 * the nodes trust), subject-reference key and dev issuer, but its own audit log, so that two
 * gateway processes never share one chain.
 */
export function siblingGatewayDir(dataDir: string, name: string): string {
  const dir = join(dataDir, name);
  if (!existsSync(join(dir, 'gateway'))) {
    mkdirSync(join(dir, 'gateway'), { recursive: true, mode: 0o700 });
    cpSync(join(dataDir, 'gateway', 'keys'), join(dir, 'gateway', 'keys'), { recursive: true });
    cpSync(join(dataDir, 'gateway', 'subject-ref.key'), join(dir, 'gateway', 'subject-ref.key'));
    cpSync(join(dataDir, 'dev-issuer'), join(dir, 'dev-issuer'), { recursive: true });
  }
  return dir;
}

/** A benchmark-only target written in TypeScript (bench/targets/*.ts), in the same environment as ours. */
export function startBenchTarget(name: string, script: string, env: NodeJS.ProcessEnv, cpus: string | null = null): Promise<Started> {
  return startProcess(name, process.execPath, nodeArgsFor(`bench/targets/${script}`), { env: serviceEnv({ ...process.env, ...env }), ready: /listening on (http:\/\/[\d.:]+)/, cpus });
}
