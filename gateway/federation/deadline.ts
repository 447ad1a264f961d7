import type { Clock } from '../../lib/clock.ts';

/** One deadline per request, shared by every node call of that request, retries included (DESIGN §2). */
export class Deadline {
  readonly at: number;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly clock: Clock,
    readonly budgetMs: number,
  ) {
    this.at = clock.now() + budgetMs;
    this.timer = setTimeout(() => this.controller.abort(new DeadlineExceeded()), budgetMs);
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  remainingMs(): number {
    return Math.max(0, this.at - this.clock.now());
  }

  /** Whether the deadline passed (rather than the request being answered first). */
  get expired(): boolean {
    return this.controller.signal.reason instanceof DeadlineExceeded;
  }

  /** Whether the request was answered, so that what is still under way was cut off for that alone. */
  get answered(): boolean {
    return this.controller.signal.reason === REQUEST_FINISHED;
  }

  /** The request is answered: a node call still under way (another root field's) is cut off. */
  dispose(): void {
    clearTimeout(this.timer);
    this.controller.abort(REQUEST_FINISHED);
  }
}

class RequestFinished extends Error {
  override name = 'RequestFinished';
  constructor() {
    super('the request was answered');
  }
}
const REQUEST_FINISHED = new RequestFinished();

export class DeadlineExceeded extends Error {
  override name = 'DeadlineExceeded';
  constructor() {
    super('the request deadline passed');
  }
}
