import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { affinityOf, cpuLayout, detectCpuLayout, parseCpuList, pinned } from '../bench/cpus.ts';

describe('the benchmark CPU layout', () => {
  it('gives the load generator the last CPU, and with four or more every gateway target the others', () => {
    expect(cpuLayout([0, 1, 2, 3])).toMatchObject({ target: '0,1,2', load: '3' });
    expect(cpuLayout([2, 5, 6, 7, 9])).toMatchObject({ target: '2,5,6,7', load: '9' });
  });

  it('leaves the gateway targets on any CPU with two or three, so that their helper threads are not held to one', () => {
    expect(cpuLayout([0, 1])).toMatchObject({ target: null, load: '1' });
    expect(cpuLayout([2, 5, 6])).toMatchObject({ target: null, load: '6' });
  });

  it('pins nothing with a single CPU to run on', () => {
    expect(cpuLayout([0])).toMatchObject({ target: null, load: null });
    expect(cpuLayout([])).toMatchObject({ target: null, load: null });
  });

  it("reads taskset's affinity lists, ranges included", () => {
    expect(parseCpuList('0,1\n')).toEqual([0, 1]);
    expect(parseCpuList(' 0-3,6')).toEqual([0, 1, 2, 3, 6]);
    expect(() => parseCpuList('none')).toThrow(/not a CPU list/);
  });

  it('runs a command through taskset only when pinned', () => {
    expect(pinned(null, 'node', ['a.js'])).toEqual(['node', ['a.js']]);
    expect(pinned('0', 'node', ['a.js'])).toEqual(['taskset', ['-c', '0', 'node', 'a.js']]);
  });

  it('pins a process to the CPUs it names on this machine', () => {
    const layout = detectCpuLayout();
    if (layout.load === null) return; // a single CPU, or no taskset: nothing to pin
    // The shell is the process taskset pins (it execs it); it asks for its own affinity.
    const [command, args] = pinned(layout.load, 'sh', ['-c', 'taskset -pc $$']);
    const result = spawnSync(command, args, { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(affinityOf(result.stdout)).toEqual(parseCpuList(layout.load));
  });
});
