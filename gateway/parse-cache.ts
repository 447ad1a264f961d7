import { BREAK, type DocumentNode, visit } from 'graphql';
import { createLRUCache } from 'graphql-yoga';

/** Names long enough to be a BSN, say as an alias or operation name (`Check_123456782`). */
const LONG_DIGIT_RUN = /\d{8,}/;

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
 * a BSN or a location inline (`hitCheck(subject: { bsn: "…" })`) is parsed for its own request
 * and forgotten with it, and a text that does not parse is kept nowhere (its error holds the whole
 * text). Callers' systems send a handful of documents with variables; those are what the cache is
 * for. At most `max` of them (each up to 16 KiB of text and its syntax tree).
 */
export function parseCaches(max: number) {
  const documents = createLRUCache<DocumentNode>({ max });
  return {
    documentCache: {
      get: (text: string) => documents.get(text),
      set: (text: string, document: DocumentNode) => {
        if (!LONG_DIGIT_RUN.test(text) && !holdsValues(document)) documents.set(text, document);
      },
    },
    errorCache: { get: (_text: string): unknown => undefined, set: (_text: string, _error: unknown) => {} },
    validationCache: true,
  };
}
