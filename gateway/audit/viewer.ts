import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Plugin } from 'graphql-yoga';
import { projectFile } from '../../lib/project.ts';

interface ViewerPage {
  html: string;
  headers: Record<string, string>;
}

/** The CSP source for each inline `<script>` or `<style>` block: exactly these may run, nothing injected. */
function inlineHashes(html: string, tag: 'script' | 'style'): string {
  const blocks = [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))];
  if (blocks.length === 0) throw new Error(`the audit viewer has no inline <${tag}>`);
  return blocks.map(([, body]) => `'sha256-${createHash('sha256').update(body!).digest('base64')}'`).join(' ');
}

function loadPage(): ViewerPage {
  const html = readFileSync(projectFile('gateway/audit/viewer.html'), 'utf8');
  return {
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      // The page is where officers paste tokens: only its own code runs, no framing, no base or form
      // targets elsewhere, and no copy kept by a cache or the back button.
      'content-security-policy':
        `default-src 'self'; script-src ${inlineHashes(html, 'script')}; style-src ${inlineHashes(html, 'style')}; connect-src 'self'; ` +
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    },
  };
}

/** The audit viewer page for privacy officers (GET /audit): static HTML that queries accessLog. */
export function useAuditViewer(): Plugin {
  let page: ViewerPage | null = null;
  return {
    onRequest({ url, request, endResponse }) {
      if (url.pathname !== '/audit' || request.method !== 'GET') return;
      page ??= loadPage();
      endResponse(new Response(page.html, { headers: page.headers }));
    },
  };
}
