import { execFileSync } from 'node:child_process';

/**
 * Which CPUs the benchmark's processes may run on, the same for every target: the load generator
 * on one CPU of its own, the gateway under test (each target in turn) on the others, and the four
 * nodes, which serve every target alike, on any. Without this, the scheduler places the load
 * generator, whose CPU grows with the req/s it drives, beside whichever process it likes, and a
 * faster target pays for its own load. Pinned with `taskset`; without it, or with a single CPU to
 * run on, nothing is pinned.
 */
export interface CpuLayout {
  /** CPU list (taskset's -c syntax) for each gateway target; null runs it unpinned. */
  target: string | null;
  /** CPU list for the load generator; null runs it unpinned. */
  load: string | null;
  /** One line for the report. */
  description: string;
}

const UNPINNED: CpuLayout = { target: null, load: null, description: 'none (every process on any CPU)' };

/** The layout for the CPUs this process may use (ascending ids). */
export function cpuLayout(allowed: readonly number[]): CpuLayout {
  if (allowed.length < 2) return UNPINNED;
  const load = String(allowed.at(-1));
  const target = allowed.slice(0, -1).join(',');
  return {
    target,
    load,
    description: `each gateway target on CPU ${target}, the load generator on CPU ${load}, the nodes on any (taskset)`,
  };
}

/** Parses taskset's affinity list ("0,1", "0-3,6"). */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(',')) {
    const [from, to] = part.split('-').map(Number);
    if (!Number.isInteger(from)) throw new Error(`not a CPU list: ${list}`);
    for (let cpu = from!; cpu <= (to ?? from!); cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** The layout for this machine, read once: the CPUs this process may use, if taskset is there. */
export function detectCpuLayout(): CpuLayout {
  try {
    const output = execFileSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return cpuLayout(parseCpuList(output.slice(output.lastIndexOf(':') + 1)));
  } catch {
    return UNPINNED;
  }
}

/** The command line that runs `command` on `cpus` (unchanged when unpinned); taskset execs it, so the pid is the command's. */
export function pinned(cpus: string | null, command: string, args: readonly string[]): [string, string[]] {
  return cpus === null ? [command, [...args]] : ['taskset', ['-c', cpus, command, ...args]];
}
