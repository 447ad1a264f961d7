import { BREAK, type DocumentNode, visit } from 'graphql';
import { createLRUCache } from 'graphql-yoga';
import { mayHoldBsn } from '../lib/bsn.ts';

/**
 * Text no cached document needs that could hold a person: a name long enough to be a BSN (an
 * alias or operation name, `Check_123456782`), or a comment (`# 1234 567 82`). A document without
 * string literals has a `#` only in a comment.
 */
const uncacheableText = (text: string) => mayHoldBsn(text) || text.includes('#');

/** Whether the document carries values of its own: a string or number literal, defaults included. */
function holdsValues(document: DocumentNode): boolean {
  let found = false;
  const stop = () => {
    found = true;
    return BREAK;
  };
  visit(document, { StringValue: stop, IntValue: stop, FloatValue: stop });
  return found;
}

/**
 * The gateway's parse caches, which keep no person data (DESIGN §2): a document is kept, by its
 * text, only when its values all come in variables, which no cache keeps. A document that names
 * a BSN or a location inline (`hitCheck(subject: { bsn: "…" })`), or holds a comment, is parsed
 * for its own request and forgotten with it, and a text that does not parse is kept nowhere (its error holds the whole
 * text). Callers' systems send a handful of documents with variables; those are what the cache is
 * for. At most `max` of them (each up to 16 KiB of text and its syntax tree).
 */
export function parseCaches(max: number) {
  const documents = createLRUCache<DocumentNode>({ max });
  return {
    documentCache: {
      get: (text: string) => documents.get(text),
      set: (text: string, document: DocumentNode) => {
        if (!uncacheableText(text) && !holdsValues(document)) documents.set(text, document);
      },
    },
    errorCache: { get: (_text: string): unknown => undefined, set: (_text: string, _error: unknown) => {} },
    validationCache: true,
  };
}
