import type { Plugin } from 'graphql-yoga';
import type { GatewayRequestState } from '../request-state.ts';

/**
 * A partner that did not answer leaves its status UNAVAILABLE in the data and one
 * PARTNER_UNAVAILABLE error next to it (DESIGN §5): the answer is partial, HTTP 200.
 */
export function usePartnerErrors(states: WeakMap<Request, GatewayRequestState>): Plugin {
  return {
    onExecute({ args }) {
      return {
        onExecuteDone({ result, setResult }) {
          const state = states.get((args.contextValue as { request: Request }).request);
          if (!state?.partnerErrors.length || !('data' in result)) return;
          const seen = new Set<string>();
          const unique = state.partnerErrors.filter((error) => {
            const partner = String(error.extensions['partner']);
            return !seen.has(partner) && seen.add(partner);
          });
          setResult({ ...result, errors: [...(result.errors ?? []), ...unique] });
        },
      };
    },
  };
}
