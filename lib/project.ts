import { fileURLToPath } from 'node:url';

/**
 * Where the project's own files are, and how to start another of its processes, whether this code
 * runs from the TypeScript sources (through tsx's loader) or from the compiled build in dist/
 * (`npm run build`), which has the same layout one folder down.
 */
const compiled = !import.meta.url.endsWith('.ts');

const ROOT = new URL(compiled ? '../../' : '../', import.meta.url);

/** A file or folder of the checkout (schemas/, policies/, bench/peers/ …), never of the build. */
export function projectFile(relative: string): string {
  return fileURLToPath(new URL(relative, ROOT));
}

/** One of our modules, given by its source path (`lib/audit/checkpointer-thread.ts`), as this process runs it. */
export function ownModule(sourcePath: string): URL {
  return new URL(compiled ? `dist/${sourcePath.replace(/\.ts$/, '.js')}` : sourcePath, ROOT);
}

/**
 * tsx as the checkout has it: a bare `tsx` would be looked up from the working directory, where a
 * command started from elsewhere (`cd /srv && soh gateway`) finds none. Only read from sources.
 */
const tsxLoader = () => import.meta.resolve('tsx');
const tsxApi = () => import.meta.resolve('tsx/esm/api');

/** Node's arguments to run one of our modules as its own process: through tsx unless compiled. */
export function nodeArgsFor(sourcePath: string): string[] {
  const file = fileURLToPath(ownModule(sourcePath));
  return compiled ? [file] : ['--import', tsxLoader(), file];
}

/** Code for a worker thread (`new Worker(code, { eval: true })`) that runs one of our modules as this process does. */
export function workerSource(sourcePath: string): string {
  const url = JSON.stringify(ownModule(sourcePath).href);
  return compiled ? `import(${url})` : `import(${JSON.stringify(tsxApi())}).then((tsx) => { tsx.register(); return import(${url}); })`;
}

/**
 * Node's runtime settings for a source node process (README, "Production build"), as `soh up` and
 * the benchmark start it. V8 gives a function its feedback vector (what its code meets, from which
 * it optimises) at its first call instead of after some calls: in interleaved A/B runs of whole
 * federations, nodes' CPU per request 0.95–0.97 of without it, req/s 1.04–1.05x.
 */
export const SOURCE_NODE_FLAGS: readonly string[] = ['--no-lazy-feedback-allocation'];

/**
 * Node's runtime settings for a gateway process (README, "Production build"), as `soh up` and the
 * benchmark start it, and measured there. The live heap is about 35 MiB, so old space is bounded.
 * V8 sizes the young generation from that bound, which left it small and scavenges frequent, so
 * it is set to 24 MiB (32 showed no steady gain over it). These flags would also size every
 * worker thread's heap; the audit log clears them before it starts its writer (lib/audit/log.ts).
 * A replica has one or two cores, and parallel GC helper threads compete with the event loop for
 * them. Feedback vectors at a function's first call, as for the nodes: gateway CPU per request
 * 0.92–0.97 of without them.
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = [
  '--max-old-space-size=192',
  '--min-semi-space-size=24',
  '--max-semi-space-size=24',
  '--single-threaded-gc',
  ...SOURCE_NODE_FLAGS,
];

/**
 * The environment of a gateway or node process that this project starts (`soh up`, the
 * benchmark): NODE_ENV=production unless the caller set one. Without it graphql-js checks every
 * failed `instanceof` for a second copy of itself, 1 % of the main thread's profile samples in
 * the gateway and in each node under benchmark load. No code of ours reads NODE_ENV.
 */
export function serviceEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { NODE_ENV: 'production', ...env };
}

/** Node's arguments to run the `soh` command in the same form as this process. */
export function sohArgs(): string[] {
  return [compiled ? fileURLToPath(ownModule('cli/main.ts')) : projectFile('bin/soh.js')];
}
