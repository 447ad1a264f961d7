import { type DocumentNode, type FieldNode, type FragmentDefinitionNode, Kind, type SelectionSetNode } from 'graphql';

/**
 * The fields an operation selects at its root, through inline fragments and fragment spreads
 * (directives ignored: counting more is safe). Each fragment is followed once, as execution does
 * (it merges repeated spreads of one fragment): a chain of fragments that each spread the next
 * twice would otherwise take 2^n steps, and a cycle of spreads would never end (the query limits
 * read root fields before validation refuses a cycle). Kept per operation: yoga's parse cache
 * hands the same document to every request that sends the same text.
 */
export function rootFields(document: DocumentNode, selectionSet: SelectionSetNode): readonly FieldNode[] {
  let fields = walked.get(selectionSet);
  if (!fields) walked.set(selectionSet, (fields = walk(document, selectionSet)));
  return fields;
}

const walked = new WeakMap<SelectionSetNode, readonly FieldNode[]>();

/** A document's fragment definitions by name. */
export function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}

function walk(document: DocumentNode, selectionSet: SelectionSetNode): FieldNode[] {
  const fragments = fragmentsOf(document);
  const followed = new Set<string>();
  const fields: FieldNode[] = [];
  const collect = (set: SelectionSetNode): void => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) fields.push(selection);
      else if (selection.kind === Kind.INLINE_FRAGMENT) collect(selection.selectionSet);
      else if (!followed.has(selection.name.value)) {
        followed.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) collect(fragment.selectionSet);
      }
    }
  };
  collect(selectionSet);
  return fields;
}
