import type { DevTokenRequest } from '../lib/dev-issuer.ts';

/** The callers the benchmark speaks for, one per public query it sends to our gateway. */
export const CALLERS: Record<'hitCheck' | 'activeBans', DevTokenRequest> = {
  hitCheck: { org: 'veilig-thuis-bench', roles: ['vt-medewerker'], purpose: 'vt-hit-check', caseRef: 'VT-BENCH-1' },
  activeBans: { org: 'politie', roles: ['politie-medewerker'], purpose: 'police-ban-enforcement', caseRef: 'PL-BENCH-1' },
};
