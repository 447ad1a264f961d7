import type { Plugin } from 'graphql-yoga';
import type { GatewayRequestState } from '../request-state.ts';
import { errorCode } from '../../lib/errors.ts';
import type { Caller } from './caller-token.ts';

/** Verifies the caller's token before the document is even parsed (401, or 503 while its issuer's keys cannot be had). */
export function useCallerAuthentication(options: {
  states: WeakMap<Request, GatewayRequestState>;
  verify(authorization: string | null): Promise<Caller>;
}): Plugin {
  return {
    async onRequestParse({ request }) {
      const state = options.states.get(request)!;
      try {
        state.caller = await options.verify(request.headers.get('authorization'));
      } catch (error) {
        state.denial = { code: errorCode(error) ?? 'UNAUTHENTICATED', rule: (error as { extensions?: { reason?: string } }).extensions?.reason ?? 'token' };
        throw error;
      }
    },
  };
}
