import { describe, expect, it } from 'vitest';
import { type Measurement, type Report, renderMarkdown } from '../bench/report.ts';

const OURS = 'ours hitCheck (full)';
const BANS = 'ours activeBans (full)';
const OFF = 'ours hitCheck (policy/audit/tracing off)';
const PLAIN = 'plain stitching, Person';
const FANOUT = 'direct fan-out, Person';

function measured(target: string, rps: number): Measurement {
  return { target, requests: rps * 10, rps, p50: 10, p95: 20, p99: 30, errors: 0, cpuMicrosPerRequest: 1_000, nodeCpuMicrosPerRequest: 2_000, peakRssMiB: 100 };
}

/** Three rounds whose machine speed drifts: each round's ratios are what the report must combine. */
function report(): Report {
  const speeds = [1, 2, 0.5];
  const round = (speed: number) => [measured(OURS, 200 * speed), measured(OFF, 250 * speed), measured(PLAIN, 100 * speed), measured(FANOUT, 180 * speed * (speed === 2 ? 3 : 2))];
  return {
    commit: 'abc1234',
    machine: { cpus: 2, model: 'test', memoryGiB: 1, node: 'v20', loadAverage: 1 },
    pinning: 'nothing pinned',
    settings: { persons: 1_000, seconds: 10, warmupSeconds: 1, leadInSeconds: 1, rounds: 3, connections: 10, rate: 100 },
    hive: { ran: false, reason: 'not installed' },
    seeding: null,
    targets: [OURS, OFF, PLAIN, FANOUT],
    fullGateway: [OURS],
    closed: speeds.map(round),
    open: speeds.map(round),
    scale: null,
    otlpExportRequests: 0,
  };
}

/** The report with `change` applied to every measurement of `target`. */
function withChanged(target: string, change: Partial<Measurement>): Report {
  const base = report();
  const apply = (rounds: Measurement[][]) => rounds.map((round) => round.map((m) => (m.target === target ? { ...m, ...change } : m)));
  return { ...base, closed: apply(base.closed), open: apply(base.open) };
}

const row = (markdown: string, start: string) => markdown.split('\n').find((line) => line.startsWith(`| ${start}`));

describe('the benchmark report', () => {
  const markdown = renderMarkdown(report());

  it('judges a target by the median of per-round ratios, with the range beside it', () => {
    expect(row(markdown, 'ours full ÷ plain stitching')).toBe('| ours full ÷ plain stitching, req/s (≥ 2) | 2.00 | 2.00 – 2.00 | yes |');
    expect(row(markdown, 'cost of policy + audit + tracing')).toBe('| cost of policy + audit + tracing, req/s (≤ 10 %) | 20.00 | 20.00 – 20.00 | no |');
  });

  it('shows how far the direct fan-out leads each gateway, the most any gateway can lead another', () => {
    const ceilings = markdown.slice(markdown.indexOf('## Ceilings'));
    // The fan-out leads plain stitching 3.6x, 5.4x and 3.6x in the three rounds, ours 1.8x, 2.7x and 1.8x.
    expect(row(ceilings, PLAIN)).toBe(`| ${PLAIN} | 3.60 | 3.60 – 5.40 |`);
    expect(row(ceilings, OURS)).toBe(`| ${OURS} | 1.80 | 1.80 – 2.70 |`);
    // The switched-off twins are no gateway another one is measured against.
    expect(row(ceilings, OFF)).toBeUndefined();
  });

  it('holds no target on a peer that failed requests', () => {
    const failing = renderMarkdown(withChanged(PLAIN, { errors: 4 }));
    // 4 failed requests in each of the three rounds.
    expect(row(failing, 'ours full ÷ plain stitching')).toBe(`| ours full ÷ plain stitching, req/s (≥ 2) | 2.00 | 2.00 – 2.00 | invalid: 12 failed requests (${PLAIN}) |`);
    // A check that does not rest on the failing target keeps its verdict.
    expect(row(failing, 'cost of policy + audit + tracing')).toMatch(/ \| no \|$/);
  });

  it('holds no target on a peer that answered nothing, though ours ÷ 0 is endless', () => {
    const dead = renderMarkdown(withChanged(PLAIN, { requests: 0, rps: 0 }));
    expect(row(dead, 'ours full ÷ plain stitching')).toBe(`| ours full ÷ plain stitching, req/s (≥ 2) | – | – – – | invalid: a round without a successful request (${PLAIN}) |`);
  });

  it("takes our gateway's peak RSS over every target on its process, at both loads", () => {
    const base = report();
    base.targets.push(BANS);
    base.fullGateway.push(BANS);
    base.closed[1]!.push({ ...measured(BANS, 150), peakRssMiB: 240 });
    base.open[2]![0] = { ...base.open[2]![0]!, peakRssMiB: 300 };
    expect(row(renderMarkdown(base), 'peak RSS')).toBe('| peak RSS of our gateway under load, MiB (≤ 256) | 300.00 |  | no |');
    base.open[2]![0]!.peakRssMiB = 100;
    expect(row(renderMarkdown(base), 'peak RSS')).toBe('| peak RSS of our gateway under load, MiB (≤ 256) | 240.00 |  | yes |');
  });

  it('says at the top when fewer than five rounds ran, and marks the targets indicative only', () => {
    const lines = markdown.split('\n');
    expect(lines[2]).toBe('**Only 3 rounds, fewer than the 5 required: the targets below are indicative only, not verdicts.**');
    expect(lines).toContain('## Targets (indicative only: 3 of 5 rounds)');
    const five = renderMarkdown({ ...report(), settings: { ...report().settings, rounds: 5 } });
    expect(five).not.toContain('indicative');
    expect(five.split('\n')).toContain('## Targets');
  });
});
