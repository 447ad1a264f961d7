import type { Plugin } from 'graphql-yoga';
import { sohError } from '../errors.ts';

/**
 * The largest request body a component reads: far above its largest legitimate request (a node's
 * batch of 500 subjects, or 1,000 trace ids for the access log, is about 40 KiB; a gateway
 * document is at most 1,000 tokens).
 */
export const MAX_REQUEST_BYTES = 256 * 1024;

/** `application/json`, with or without parameters such as a charset. */
const JSON_BODY = /^application\/json\s*(?:;|$)/i;

function tooLarge() {
  return sohError('GRAPHQL_PARSE_FAILED', `The request body is larger than ${MAX_REQUEST_BYTES} bytes.`);
}

/** A POST body this plugin lets through unread: JSON, of a declared length within the cap. */
export function declaredReadable(request: Request): boolean {
  const declared = request.headers.get('content-length');
  return request.method === 'POST' && JSON_BODY.test(request.headers.get('content-type') ?? '') && declared !== null && Number(declared) <= MAX_REQUEST_BYTES;
}

/**
 * A chunked body past the limit is read on to its end, up to this much, so that the client gets
 * the refusal instead of a reset connection; beyond it the connection is cut.
 */
const MAX_DRAINED_BYTES = 4 * MAX_REQUEST_BYTES;

/**
 * Admits a request body only as JSON, and caps it. Yoga would also read a document sent as
 * application/graphql or as a form, and answer any other type with an empty 415: the contract
 * knows one way in, and a refusal carries its code (DESIGN §8). Node's HTTP parser never hands on
 * more of a body than its Content-Length says, so a declared length is checked once, before
 * anything is read. Only a body without one
 * (chunked) is counted while it is read. Yoga's own limit, switched off where this plugin is used
 * (`maxRequestBodySize: false`), pipes every body through a counting stream, which cost about a
 * tenth of a node's CPU per request.
 */
export function useRequestBody(): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      // Any other method is refused as METHOD_NOT_ALLOWED.
      // Yoga picks its parser by the type as it spells it (`Application/JSON` finds none) and would
      // answer an empty 415 of its own, past every hook: no code, no audit record.
      if (request.method === 'POST' && (!JSON_BODY.test(request.headers.get('content-type') ?? '') || !requestParser)) {
        throw sohError('GRAPHQL_PARSE_FAILED', 'The request body must be JSON (Content-Type: application/json).');
      }
      const declared = request.headers.get('content-length');
      if (declared !== null) {
        if (Number(declared) > MAX_REQUEST_BYTES) throw tooLarge();
        return;
      }
      if (!requestParser) return;
      setRequestParser(async (unbounded) => {
        if (!unbounded.body) return requestParser(unbounded);
        const chunks: Uint8Array[] = [];
        let size = 0;
        for await (const chunk of unbounded.body as unknown as AsyncIterable<Uint8Array>) {
          size += chunk.byteLength;
          if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
          else if (size > MAX_DRAINED_BYTES) break;
        }
        if (size > MAX_REQUEST_BYTES) throw tooLarge();
        return requestParser(new fetchAPI.Request(unbounded.url, { method: unbounded.method, headers: unbounded.headers, body: Buffer.concat(chunks) }));
      });
    },
  };
}
