import { createServer, type Server } from 'node:http';

export function listen(handler: Parameters<typeof createServer>[1], port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer({ keepAliveTimeout: 65_000 }, handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/** How often a draining server looks for keep-alive connections that have fallen idle. */
const IDLE_SWEEP_MS = 25;

/**
 * Stops a server the way a rolling restart needs: it takes no new connections at once, answers
 * every request already in flight (and any that arrives on a connection already open, telling the
 * client to reconnect elsewhere with `Connection: close`), and cuts what is still running after
 * `graceMs`. A ban check that was asked before the stop gets its answer, and its audit record.
 */
export function closeGracefully(server: Server, graceMs: number): Promise<void> {
  server.prependListener('request', (_request, response) => response.setHeader('connection', 'close'));
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // A connection busy when the stop began stays open after its answer (keep-alive): close it then.
  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  const cut = setTimeout(() => server.closeAllConnections(), graceMs);
  return closed.finally(() => {
    clearInterval(sweep);
    clearTimeout(cut);
  });
}

/**
 * Runs the last steps of a start-up; if they fail, releases what the earlier steps opened (audit
 * thread, store, pools) before the error goes on, so that a failed start leaves nothing running.
 */
export async function startOrRelease<T>(release: () => Promise<void>, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    // The start-up error is the one to report; a failure to release adds nothing to it.
    await release().catch(() => undefined);
    throw error;
  }
}
