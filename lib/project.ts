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

/** One of our modules, given by its source path (`lib/audit/writer-thread.ts`), as this process runs it. */
export function ownModule(sourcePath: string): URL {
  return new URL(compiled ? `dist/${sourcePath.replace(/\.ts$/, '.js')}` : sourcePath, ROOT);
}

/** Node's arguments to run one of our modules as its own process: through tsx unless compiled. */
export function nodeArgsFor(sourcePath: string): string[] {
  const file = fileURLToPath(ownModule(sourcePath));
  return compiled ? [file] : ['--import', 'tsx', file];
}

/** Code for a worker thread (`new Worker(code, { eval: true })`) that runs one of our modules as this process does. */
export function workerSource(sourcePath: string): string {
  const url = JSON.stringify(ownModule(sourcePath).href);
  return compiled ? `import(${url})` : `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${url}); })`;
}

/** Node's arguments to run the `soh` command in the same form as this process. */
export function sohArgs(): string[] {
  return [compiled ? fileURLToPath(ownModule('cli/main.ts')) : projectFile('bin/soh.js')];
}
