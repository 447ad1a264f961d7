import type { Clock } from '../../lib/clock.ts';

/** What `allow()` grants: a call, or the one trial call of an open circuit. */
export type Permit = 'call' | 'trial';

/**
 * A circuit breaker per node: after `threshold` consecutive failures the node is skipped (and
 * reported UNAVAILABLE at once) for `cooldownMs`; then one trial call is let through. Only the
 * trial's own end lets the next trial go: a call let through before the circuit opened may end
 * while the trial is under way.
 */
export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private trialInFlight = false;

  constructor(
    private readonly clock: Clock,
    private readonly threshold = 5,
    private readonly cooldownMs = 5_000,
  ) {}

  /** Whether a call may go out now (null: not), and as what; its end is reported with the permit. */
  allow(): Permit | null {
    if (this.failures < this.threshold) return 'call';
    const now = this.clock.now();
    // A clock stepped back would keep the circuit open for as long as the step (a node skipped
    // for an hour): the cool-down never runs past `cooldownMs` from now.
    if (this.openUntil - now > this.cooldownMs) this.openUntil = now + this.cooldownMs;
    if (now < this.openUntil || this.trialInFlight) return null;
    this.trialInFlight = true;
    return 'trial';
  }

  success(permit: Permit = 'call'): void {
    this.failures = 0;
    if (permit === 'trial') this.trialInFlight = false;
  }

  failure(permit: Permit = 'call'): void {
    if (permit === 'trial') this.trialInFlight = false;
    this.failures++;
    if (this.failures >= this.threshold) this.openUntil = this.clock.now() + this.cooldownMs;
  }

  /** A call that ended for its request's sake, not the node's: it counts neither way. */
  abandoned(permit: Permit = 'call'): void {
    if (permit === 'trial') this.trialInFlight = false;
  }

  get state(): 'closed' | 'open' {
    return this.failures >= this.threshold ? 'open' : 'closed';
  }
}
