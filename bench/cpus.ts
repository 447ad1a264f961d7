import { execFileSync } from 'node:child_process';

/**
 * Which CPUs the benchmark's processes may run on, the same for every target: the load generator
 * always on the last CPU, so that its load, which grows with the req/s it drives, lands in the
 * same place whichever target it drives. With four CPUs or more, each
 * gateway target runs on the others, away from the load generator. With two or three, the
 * targets and the nodes run on any: one CPU cannot hold a gateway's event loop and its helper
 * threads (the audit's fdatasync and checkpoints) without making them wait on each other. Measured
 * on 2 vCPUs, with each gateway target held to CPU 0: our full gateway's CPU per request rose from
 * 2,073 to 2,769 µs and the cost of its audit from 8.8 % to 38.8 % of req/s, in two runs of the
 * whole benchmark in one session (README, Benchmark). Pinned with `taskset`; without it, or with
 * a single CPU to run on, nothing is pinned.
 */
export interface CpuLayout {
  /** CPU list (taskset's -c syntax) for each gateway target; null runs it on any. */
  target: string | null;
  /** CPU list for the load generator; null runs it on any. */
  load: string | null;
  /** One line for the report. */
  description: string;
}

const UNPINNED: CpuLayout = { target: null, load: null, description: 'none (every process on any CPU)' };

/** The layout for the CPUs this process may use (ascending ids). */
export function cpuLayout(allowed: readonly number[]): CpuLayout {
  if (allowed.length < 2) return UNPINNED;
  const load = String(allowed.at(-1));
  if (allowed.length < 4) {
    return { target: null, load, description: `the load generator on CPU ${load}, each gateway target and the nodes on any (taskset)` };
  }
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

/** The CPUs in `taskset -p`'s answer ("pid 123's current affinity list: 0,1"). */
export function affinityOf(tasksetOutput: string): number[] {
  return parseCpuList(tasksetOutput.slice(tasksetOutput.lastIndexOf(':') + 1));
}

/** The layout for this machine, read once: the CPUs this process may use, if taskset is there. */
export function detectCpuLayout(): CpuLayout {
  try {
    const output = execFileSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return cpuLayout(affinityOf(output));
  } catch {
    return UNPINNED;
  }
}

/** The command line that runs `command` on `cpus` (unchanged when unpinned); taskset execs it, so the pid is the command's. */
export function pinned(cpus: string | null, command: string, args: readonly string[]): [string, string[]] {
  return cpus === null ? [command, [...args]] : ['taskset', ['-c', cpus, command, ...args]];
}
