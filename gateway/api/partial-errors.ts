import type { Plugin } from 'graphql-yoga';
import type { GatewayRequestState } from '../request-state.ts';

/**
 * A partner that did not answer leaves its status UNAVAILABLE in the data and one
 * PARTNER_UNAVAILABLE error next to it (DESIGN §5), and a location check past its limit leaves
 * `violatedAt` out with one RATE_LIMITED error: the answer is partial, HTTP 200.
 */
export function usePartialErrors(states: WeakMap<Request, GatewayRequestState>): Plugin {
  return {
    onExecute({ args }) {
      return {
        onExecuteDone({ result, setResult }) {
          const state = states.get((args.contextValue as { request: Request }).request);
          if (!state?.partialErrors.length || !('data' in result)) return;
          const seen = new Set<string>();
          const unique = state.partialErrors.filter((error) => {
            // Once per partner, and once per kind of error that names none.
            const key = `${String(error.extensions['code'])}|${String(error.extensions['partner'] ?? '')}`;
            return !seen.has(key) && seen.add(key);
          });
          setResult({ ...result, errors: [...(result.errors ?? []), ...unique] });
        },
      };
    },
  };
}
