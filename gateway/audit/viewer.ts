import { readFileSync } from 'node:fs';
import type { Plugin } from 'graphql-yoga';
import { projectFile } from '../../lib/project.ts';

/** The audit viewer page for privacy officers (GET /audit): static HTML that queries accessLog. */
export function useAuditViewer(): Plugin {
  let page: string | null = null;
  return {
    onRequest({ url, request, endResponse }) {
      if (url.pathname !== '/audit' || request.method !== 'GET') return;
      page ??= readFileSync(projectFile('gateway/audit/viewer.html'), 'utf8');
      endResponse(
        new Response(page, {
          headers: {
            'content-type': 'text/html; charset=utf-8',
            // The page is where officers paste tokens: no framing, no base or form targets elsewhere.
            'content-security-policy':
              "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'; " +
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            'referrer-policy': 'no-referrer',
            'x-content-type-options': 'nosniff',
          },
        }),
      );
    },
  };
}
