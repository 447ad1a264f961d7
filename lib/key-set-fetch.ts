import { customFetch } from 'jose';
import { request } from 'undici';

/**
 * How a remote JWKS is fetched (jose's `customFetch`): through undici's `request`, not `fetch()`.
 * `fetch()` refuses the WHATWG "bad ports" (6000, 6665–6669, 10080, …): a gateway listening on one
 * of them left every node unable to fetch its keys, and every partner UNAVAILABLE. jose reads only
 * the status and the JSON body; redirects are not followed (jose asks for `redirect: manual`), so
 * a 3xx is a failed fetch, as with jose's own fetch.
 */
async function fetchKeySet(url: string, init: { headers: Headers; signal: AbortSignal }): Promise<Response> {
  const { statusCode, body } = await request(url, { method: 'GET', headers: Object.fromEntries(init.headers), signal: init.signal });
  const text = await body.text();
  // A Response with one of these statuses may carry no body at all.
  return new Response([204, 205, 304].includes(statusCode) ? null : text, { status: statusCode });
}

export const keySetFetch = { [customFetch]: fetchKeySet } as const;
