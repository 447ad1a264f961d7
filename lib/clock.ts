/** Time is injected everywhere it decides something (token checks, ban activity, audit stamps). */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export function fixedClock(epochMs: number): Clock & { set(ms: number): void } {
  let current = epochMs;
  return { now: () => current, set: (ms) => void (current = ms) };
}
