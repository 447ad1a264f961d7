import { type DocumentNode, Kind, type SelectionSetNode, parse } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { sohError } from '../lib/errors.ts';

export interface QueryLimits {
  maxTokens: number;
  maxDepth: number;
  maxAliases: number;
  maxRootFields: number;
}

export const DEFAULT_LIMITS: QueryLimits = { maxTokens: 1_000, maxDepth: 8, maxAliases: 8, maxRootFields: 4 };

function measure(document: DocumentNode): { depth: number; aliases: number; rootFields: number } {
  let aliases = 0;
  let rootFields = 0;
  const depthOf = (set: SelectionSetNode | undefined, level: number): number => {
    if (!set) return level;
    let deepest = level;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.alias) aliases++;
        deepest = Math.max(deepest, depthOf(selection.selectionSet, level + 1));
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        deepest = Math.max(deepest, depthOf(selection.selectionSet, level));
      }
    }
    return deepest;
  };
  let depth = 0;
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION) {
      rootFields += definition.selectionSet.selections.length;
      depth = Math.max(depth, depthOf(definition.selectionSet, 0));
    } else if (definition.kind === Kind.FRAGMENT_DEFINITION) {
      depth = Math.max(depth, depthOf(definition.selectionSet, 1));
    }
  }
  return { depth, aliases, rootFields };
}

/**
 * Bounds what one request may cost (QUERY_TOO_COMPLEX): tokens while parsing, then depth,
 * aliases (no alias-batched lookups of many persons) and root fields. Fragment spreads are
 * measured at their definition, which keeps the bound conservative.
 */
export function useQueryLimits(limits: QueryLimits = DEFAULT_LIMITS): Plugin {
  return {
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
        const { depth, aliases, rootFields } = measure(result as DocumentNode);
        const problem =
          depth > limits.maxDepth ? `depth ${depth} exceeds ${limits.maxDepth}`
          : aliases > limits.maxAliases ? `${aliases} aliases exceed ${limits.maxAliases}`
          : rootFields > limits.maxRootFields ? `${rootFields} root fields exceed ${limits.maxRootFields}`
          : null;
        if (problem) replaceParseResult(sohError('QUERY_TOO_COMPLEX', `The query is too complex: ${problem}.`));
      };
    },
  };
}
