import { describe, expect, it } from 'vitest';
import { roundOrder } from '../bench/round-order.ts';

const TARGETS = ['full', 'off', 'bans', 'no-policy', 'no-audit', 'plain', 'hive', 'fanout'];

describe('the benchmark round order', () => {
  const rounds = [1, 2, 3, 4, 5].map((round) => roundOrder(TARGETS, round));

  it('runs every target exactly once per round', () => {
    for (const order of rounds) expect([...order].sort()).toEqual([...TARGETS].sort());
  });

  it('keeps our gateway and its switched-off twin next to each other, in both orders', () => {
    const pairs = rounds.map((order) => Math.abs(order.indexOf('full') - order.indexOf('off')));
    expect(pairs).toEqual([1, 1, 1, 1, 1]);
    const offFirst = rounds.filter((order) => order.indexOf('off') < order.indexOf('full')).length;
    expect(offFirst).toBe(2);
  });

  it('does not put a target behind the same one in every round', () => {
    for (const target of TARGETS) {
      const before = new Set(rounds.map((order) => order[order.indexOf(target) - 1]).filter(Boolean));
      expect(before.size, target).toBe(2);
    }
  });
});
