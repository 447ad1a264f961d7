import { type DocumentNode, type FragmentDefinitionNode, Kind, type SelectionSetNode, parse } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { sohError } from '../lib/errors.ts';
import { fragmentsOf, rootFields as rootFieldsOf } from '../lib/graphql/root-fields.ts';

export interface QueryLimits {
  maxTokens: number;
  /** The document's text: a thousand tokens written out take a few KiB. */
  maxDocumentBytes: number;
  maxDepth: number;
  maxAliases: number;
  maxRootFields: number;
}

export const DEFAULT_LIMITS: QueryLimits = { maxTokens: 1_000, maxDocumentBytes: 16 * 1024, maxDepth: 8, maxAliases: 8, maxRootFields: 4 };

/**
 * How deep each fragment's own selections reach, spreads followed: each fragment is measured once,
 * so a chain of fragments that each spread the next twice costs linear time, and a fragment spread
 * inside itself (a cycle, which validation refuses later) adds nothing instead of recursing forever.
 */
class FragmentDepths {
  private readonly fragments: Map<string, FragmentDefinitionNode>;
  private readonly measured = new Map<string, number>();
  private readonly measuring = new Set<string>();

  constructor(document: DocumentNode) {
    this.fragments = fragmentsOf(document);
  }

  /** Levels of fields below `set`, the fields of `set` itself counting as one. */
  depthBelow(set: SelectionSetNode | undefined): number {
    if (!set) return 0;
    let deepest = 0;
    for (const selection of set.selections) {
      const depth =
        selection.kind === Kind.FIELD ? 1 + this.depthBelow(selection.selectionSet)
        : selection.kind === Kind.INLINE_FRAGMENT ? this.depthBelow(selection.selectionSet)
        : this.fragmentDepth(selection.name.value);
      deepest = Math.max(deepest, depth);
    }
    return deepest;
  }

  private fragmentDepth(name: string): number {
    const known = this.measured.get(name);
    if (known !== undefined) return known;
    const fragment = this.fragments.get(name);
    // An unknown fragment is for validation to refuse.
    if (!fragment || this.measuring.has(name)) return 0;
    this.measuring.add(name);
    const depth = this.depthBelow(fragment.selectionSet);
    this.measuring.delete(name);
    this.measured.set(name, depth);
    return depth;
  }
}

function measure(document: DocumentNode): { depth: number; aliases: number; rootFields: number } {
  let aliases = 0;
  let rootFields = 0;
  let depth = 0;
  const fragments = new FragmentDepths(document);
  const countAliases = (set: SelectionSetNode | undefined): void => {
    for (const selection of set?.selections ?? []) {
      if (selection.kind === Kind.FIELD && selection.alias) aliases++;
      if (selection.kind !== Kind.FRAGMENT_SPREAD) countAliases(selection.selectionSet);
    }
  };
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION) {
      // As execution sees them: through fragments, each fragment once (root-fields.ts).
      rootFields += rootFieldsOf(document, definition.selectionSet).length;
      depth = Math.max(depth, fragments.depthBelow(definition.selectionSet));
    }
    if (definition.kind === Kind.OPERATION_DEFINITION || definition.kind === Kind.FRAGMENT_DEFINITION) countAliases(definition.selectionSet);
  }
  return { depth, aliases, rootFields };
}

/**
 * Bounds what one request may cost (QUERY_TOO_COMPLEX): tokens while parsing, then depth,
 * aliases (no alias-batched lookups of many persons) and root fields. Depth and root fields are
 * measured through fragments, where they are spread; aliases are counted where they are written.
 */
export function useQueryLimits(limits: QueryLimits = DEFAULT_LIMITS): Plugin {
  // Per document: yoga's parse cache hands the same document to every request with the same text.
  const problems = new WeakMap<DocumentNode, string | null>();
  const problemOf = (document: DocumentNode): string | null => {
    let problem = problems.get(document);
    if (problem === undefined) {
      const { depth, aliases, rootFields } = measure(document);
      problem =
        depth > limits.maxDepth ? `depth ${depth} exceeds ${limits.maxDepth}`
        : aliases > limits.maxAliases ? `${aliases} aliases exceed ${limits.maxAliases}`
        : rootFields > limits.maxRootFields ? `${rootFields} root fields exceed ${limits.maxRootFields}`
        : null;
      problems.set(document, problem);
    }
    return problem;
  };
  return {
    // Before parsing, so that no cache keeps it: a comment or a string counts as one token or
    // none, and yoga's parse cache keeps each text it parses (1,000 texts of 255 KiB filled a
    // 192 MiB heap).
    onParams({ params }) {
      if (typeof params.query === 'string' && Buffer.byteLength(params.query) > limits.maxDocumentBytes) {
        throw sohError('QUERY_TOO_COMPLEX', `The document is larger than ${limits.maxDocumentBytes} bytes.`);
      }
    },
    onParse({ setParseFn }) {
      setParseFn((source, options) => {
        try {
          return parse(source, { ...options, maxTokens: limits.maxTokens });
        } catch (error) {
          if (/contains more th\w+ \d+ tokens/.test((error as Error).message)) {
            throw sohError('QUERY_TOO_COMPLEX', `The document has more than ${limits.maxTokens} tokens.`);
          }
          throw error;
        }
      });
      return ({ result, replaceParseResult }) => {
        if (result instanceof Error || !result) return;
        const problem = problemOf(result as DocumentNode);
        if (problem) replaceParseResult(sohError('QUERY_TOO_COMPLEX', `The query is too complex: ${problem}.`));
      };
    },
  };
}
