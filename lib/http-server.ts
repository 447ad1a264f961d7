import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

type Handler = (request: IncomingMessage, response: ServerResponse) => unknown;

/**
 * The requests a server is working on, each until its handler has settled: yoga's handler settles
 * after it has answered, and it goes on (writing the audit record) even when its client has gone.
 */
interface InFlight {
  /** Each answer in flight, with the connection its request came on, in the order they came. */
  responses: Map<ServerResponse, Socket>;
  settled: (() => void)[];
}

const inFlightOf = new WeakMap<Server, InFlight>();

/**
 * How long a client may take to send one whole request (headers and body, at most 256 KiB).
 * Node's default is 5 minutes: a caller holding back the last byte of each of many requests
 * would keep a socket and its buffered body for that long, each costing one request of its limit.
 */
const REQUEST_TIMEOUT_MS = 10_000;

export function listen(handler: Handler, port: number, host = '127.0.0.1', options: { requestTimeoutMs?: number } = {}): Promise<Server> {
  const inFlight: InFlight = { responses: new Map(), settled: [] };
  const requestTimeout = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  // Node checks for late requests on this interval (30 s by default): a tenth of the timeout.
  const timeouts = { requestTimeout, headersTimeout: requestTimeout, connectionsCheckingInterval: Math.max(100, requestTimeout / 10) };
  const server = createServer({ keepAliveTimeout: 65_000, ...timeouts }, (request, response) => {
    inFlight.responses.set(response, request.socket);
    const done = () => {
      inFlight.responses.delete(response);
      if (inFlight.responses.size === 0) for (const resolve of inFlight.settled.splice(0)) resolve();
    };
    let result: unknown;
    try {
      result = handler(request, response);
    } catch (error) {
      done();
      throw error;
    }
    void Promise.resolve(result).then(done, (error: unknown) => {
      done();
      throw error;
    });
  });
  inFlightOf.set(server, inFlight);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/** How often a draining server looks for keep-alive connections that have fallen idle. */
const IDLE_SWEEP_MS = 25;

/**
 * Stops a server the way a rolling restart needs: it takes no new connections at once, answers
 * every request already in flight and any that arrives on a connection already open, the last
 * answer on each connection with `Connection: close` (where its headers have not gone yet) so that
 * the client reconnects elsewhere, and cuts the connections still open after `graceMs`. It
 * resolves only when every handler has settled (waiting at most another `graceMs` for those that
 * were cut), so that what they write to an audit log is written before the caller closes it.
 */
export async function closeGracefully(server: Server, graceMs: number): Promise<void> {
  const inFlight = inFlightOf.get(server);
  if (inFlight) for (const socket of new Set(inFlight.responses.values())) closeAfterLastAnswer(inFlight, socket);
  // Runs before the handler, which adds the new answer to those in flight.
  server.prependListener('request', (request, response) => {
    if (inFlight) closeAfterLastAnswer(inFlight, request.socket, false);
    response.setHeader('connection', 'close');
  });
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // A connection whose answer had begun before the stop stays open after it (keep-alive): close it then.
  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  const cut = setTimeout(() => server.closeAllConnections(), graceMs);
  try {
    await closed;
    if (inFlight && inFlight.responses.size > 0) {
      let giveUp: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => inFlight.settled.push(resolve)),
        new Promise<void>((resolve) => (giveUp = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(giveUp);
    }
  } finally {
    clearInterval(sweep);
    clearTimeout(cut);
  }
}

/**
 * The `close()` of a running component: stops its server gracefully, then releases what the
 * server used (audit log, store, pools). Called again, it returns the same stop.
 */
export function stopper(server: Server, graceMs: number, release: () => Promise<void>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => (stopping ??= closeGracefully(server, graceMs).then(release));
}

/**
 * Says `Connection: close` on the last answer in flight on a connection (or, with `markLast`
 * false, on none of them: a later one will say it), and takes it back from the earlier ones: Node
 * closes the connection after such an answer and drops the requests queued behind it.
 */
function closeAfterLastAnswer(inFlight: InFlight, socket: Socket, markLast = true): void {
  let last: ServerResponse | undefined;
  for (const [response, on] of inFlight.responses) {
    if (on !== socket || response.headersSent) continue;
    response.removeHeader('connection');
    last = response;
  }
  if (markLast) last?.setHeader('connection', 'close');
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
