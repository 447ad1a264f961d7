import type { NodeId } from '../lib/partners.ts';
import om from './om/index.ts';
import politie from './politie/index.ts';
import reclassering from './reclassering/index.ts';
import type { NodeDefinition } from './runtime/definition.ts';
import veiligThuis from './veilig-thuis/index.ts';

/** Every organisation's node, by id. */
export const NODES: Record<NodeId, NodeDefinition> = {
  politie,
  'veilig-thuis': veiligThuis,
  om,
  reclassering,
};
