import { stopTelemetry } from '../lib/telemetry.ts';

/**
 * A repeat within this long is the same Ctrl-C: under `npm start` or `npx`, the terminal signals
 * the whole foreground process group and npm forwards its own copy to the script as well.
 */
export const SAME_SIGNAL_MS = 1_000;

/** Spans still queued for export get this long to leave; a collector that is down delays no stop. */
const TELEMETRY_FLUSH_MS = 2_000;

/**
 * Closes a component cleanly on Ctrl-C or SIGTERM, then sends the spans still queued; a second
 * signal (not the first one delivered twice) ends the process at once.
 */
export function stopOnSignal(close: () => Promise<void>): void {
  let firstAt: number | null = null;
  const stop = () => {
    if (firstAt !== null) {
      if (Date.now() - firstAt >= SAME_SIGNAL_MS) process.exit(1);
      return;
    }
    firstAt = Date.now();
    close()
      .then(() => flushTelemetry())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  // SIGHUP too: a closed terminal or ssh session would otherwise end the process without draining.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', stop);
}

function flushTelemetry(): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, TELEMETRY_FLUSH_MS)));
  return Promise.race([stopTelemetry().catch(() => {}), late]).finally(() => clearTimeout(timer));
}
