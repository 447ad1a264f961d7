import type { Dispatcher } from 'undici';

export interface RawResponse {
  statusCode: number;
  text: string;
}

/** An answer larger than the caller allows: it is cut off as it arrives, never held whole. */
export class AnswerTooLarge extends Error {
  override name = 'AnswerTooLarge';
  constructor(maxBytes: number) {
    super(`the answer is larger than ${maxBytes} bytes`);
  }
}

/**
 * One POST through undici's dispatcher, collecting the (small) answer into a string, up to
 * `maxBytes`: a partner that answers without end must not fill the gateway's memory. The
 * `request()` API wraps every answer in a readable stream and a handler object of its own before
 * the text can be read; for a node's JSON answer of a few hundred bytes that machinery cost more
 * than the call itself. The signal ends the call wherever it is, connecting included.
 */
export function postJson(dispatcher: Dispatcher, path: string, headers: Record<string, string>, body: string, signal: AbortSignal, maxBytes: number): Promise<RawResponse> {
  return new Promise((settle, fail) => {
    if (signal.aborted) return fail(signal.reason);
    let controller: Dispatcher.DispatchController | null = null;
    let statusCode = 0;
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const resolve = (response: RawResponse) => {
      settled || settle(response);
      settled = true;
    };
    const reject = (error: unknown) => {
      settled || fail(error);
      settled = true;
    };
    // Undici hands over a controller only once the request is written to a connected socket. A
    // call still connecting (a host that drops the SYN) or queued for a free connection would
    // otherwise wait out undici's 10 s connect timeout, and the whole answer with it: it is given
    // up here at once, and undici aborts it as it starts (onRequestStart).
    const onAbort = () => (controller ? controller.abort(signal.reason) : reject(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    dispatcher.dispatch(
      { method: 'POST', path, headers, body },
      {
        onRequestStart(started) {
          controller = started;
          if (signal.aborted) started.abort(signal.reason);
        },
        onResponseStart(_controller, status) {
          statusCode = status;
        },
        onResponseData(responding, chunk) {
          received += chunk.length;
          if (received > maxBytes) return responding.abort(new AnswerTooLarge(maxBytes));
          chunks.push(chunk);
        },
        onResponseEnd() {
          signal.removeEventListener('abort', onAbort);
          resolve({ statusCode, text: chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8') });
        },
        onResponseError(_controller, error) {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      },
    );
  });
}
