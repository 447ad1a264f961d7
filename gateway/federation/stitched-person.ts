import { makeExecutableSchema } from '@graphql-tools/schema';
import { stitchSchemas } from '@graphql-tools/stitch';
import type { SubschemaConfig } from '@graphql-tools/delegate';
import type { GraphQLResolveInfo, GraphQLSchema } from 'graphql';
import { DateTimeScalar, JSONScalar } from '../../lib/graphql/scalars.ts';
import { PARTNER_INFO, type Partner } from '../../lib/partners.ts';
import { schemaSource } from '../../lib/schemas.ts';
import type { NodeCallContext, NodeClient } from './node-client.ts';
import { loadRecord } from './records-batch.ts';

/**
 * The internal stitched schema: a `Person` keyed by BSN with one field per node, each resolved by
 * batched delegation to that node's `records` query, so that all persons asked for in one round
 * go to each node in one request (./records-batch.ts, through the node subschema's executor).
 * Every node speaks the same API, so the stitched root fields of the nodes overlap; nothing
 * reads them.
 *
 * Never exposed: the public API (schemas/gateway.graphql) reads it through `PersonFetcher`.
 */
export function buildStitchedPerson(clients: ReadonlyMap<Partner, NodeClient>): GraphQLSchema {
  const nodeSchema = makeExecutableSchema({ typeDefs: schemaSource('node'), resolvers: { DateTime: DateTimeScalar, JSON: JSONScalar } });
  const subschemas = new Map<Partner, SubschemaConfig<unknown, unknown, unknown, NodeCallContext>>();
  for (const info of PARTNER_INFO) {
    const client = clients.get(info.partner);
    if (!client) continue;
    subschemas.set(info.partner, {
      name: info.nodeId,
      schema: nodeSchema,
      executor: client.executor,
    });
  }

  const personFields = PARTNER_INFO.filter((info) => subschemas.has(info.partner));
  return stitchSchemas({
    subschemas: [...subschemas.values()],
    // `person` itself is the gateway's own: resolved here, without a delegation of its own.
    typeDefs: /* GraphQL */ `
      extend type Query { person(bsn: String!): Person }
      type Person {
        bsn: String!
        ${personFields.map((info) => `${info.personField}(at: DateTime!, location: GeoPointInput, counterpartBsn: String): NodeRecord`).join('\n')}
      }
    `,
    resolvers: {
      Query: { person: (_root: unknown, { bsn }: { bsn: string }) => ({ bsn }) },
      Person: Object.fromEntries(
        personFields.map((info) => {
          const client = clients.get(info.partner)!;
          return [
            info.personField,
            {
              resolve: (person: { bsn: string }, args: Record<string, unknown>, context: NodeCallContext, resolveInfo: GraphQLResolveInfo) =>
                loadRecord(client, person.bsn, args, context, resolveInfo),
            },
          ];
        }),
      ),
    },
  });
}
