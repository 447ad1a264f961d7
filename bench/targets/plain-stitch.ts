import { createServer } from 'node:http';
import { buildHTTPExecutor } from '@graphql-tools/executor-http';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { stitchSchemas } from '@graphql-tools/stitch';
import { RenameRootFields } from '@graphql-tools/wrap';
import { createYoga } from 'graphql-yoga';
import { PARTNER_INFO } from '../../lib/partners.ts';
import { schemaSource } from '../../lib/schemas.ts';
import { nodeTokenReader } from '../node-token.ts';
import { benchEnv, listen } from './env.ts';

/**
 * The plain stitching baseline, the way most projects start: graphql-yoga and
 * @graphql-tools/stitch with the default HTTP executor per node, no batching, no pools.
 */
const { nodes, tokenFile, port } = benchEnv();
const token = nodeTokenReader(tokenFile);
const nodeSchema = makeExecutableSchema({ typeDefs: schemaSource('node') });

const schema = stitchSchemas({
  subschemas: PARTNER_INFO.map((info) => ({
    schema: nodeSchema,
    executor: buildHTTPExecutor({ endpoint: `${nodes[info.nodeId]}/graphql`, headers: () => ({ authorization: `Bearer ${token()}` }) }),
    transforms: [new RenameRootFields((_operation: string, name: string) => `${info.personField}_${name}`)],
  })),
});

const yoga = createYoga({ schema, graphiql: false, logging: false });
listen(createServer(yoga), port, 'plain-stitch');
