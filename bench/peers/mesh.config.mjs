// Composes the four nodes into a supergraph for Hive Gateway (the benchmark's peer). Every node
// speaks the same API, so each node's root fields and types get its Person-field prefix
// (politie_records, …); the shared scalars and inputs stay as they are.
import { fileURLToPath } from 'node:url';
import { createPrefixTransform, defineConfig, loadGraphQLHTTPSubgraph } from '@graphql-mesh/compose-cli';

const nodes = JSON.parse(process.env.SOH_BENCH_NODES);
const prefixes = { politie: 'politie', 'veilig-thuis': 'veiligThuis', om: 'om', reclassering: 'reclassering' };
const source = fileURLToPath(new URL('../../schemas/node.graphql', import.meta.url));

export const composeConfig = defineConfig({
  output: process.env.SOH_BENCH_SUPERGRAPH,
  subgraphs: Object.entries(nodes).map(([id, url]) => ({
    sourceHandler: loadGraphQLHTTPSubgraph(prefixes[id], { endpoint: `${url}/graphql`, source }),
    transforms: [createPrefixTransform({ value: `${prefixes[id]}_`, includeRootOperations: true, ignore: ['DateTime', 'JSON', 'GeoPointInput', 'BanKind'] })],
  })),
});
