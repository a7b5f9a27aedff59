// GET /: what a person opening the server's address sees: what this is, the
// pages and endpoints to go to, and the README's curl lines to try, aimed at
// the address they asked (its Host). And /favicon.ico, which every browser
// asks for. Neither is part of the API, so /openapi.json leaves them out; their
// methods (GET, HEAD; else 405) are their routes', as every path's.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { escapeHtml, faviconSvg, pageHead, pageSecurityHeaders, pageStyle } from "./page-style.ts";

const indexStyle = `
.links { list-style: none; padding: 0; margin: 1.5rem 0; display: grid; gap: .75rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 22rem), 1fr)); }
.links a { display: block; height: 100%; text-decoration: none; color: inherit; }
.links a:hover { border-color: var(--accent); }
.links strong { display: block; color: var(--accent); font-size: 1.05rem; }
.links code { color: var(--muted); }
.links span { display: block; color: var(--muted); font-size: .92rem; margin-top: .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .25rem; }
`;

const links: [href: string, title: string, what: string][] = [
  [
    "/live",
    "Live order counts",
    "The total and one customer's count, updating as orders are written; a form to add one.",
  ],
  ["/docs", "API documentation", "Every route and tRPC procedure, to read and try (Swagger UI)."],
  ["/health", "Health", "Whether the database and the cache are up, and changes made outside the app reach the cache."],
  ["/metrics", "Metrics", "Requests, cache hits and the database pool, for Prometheus."],
];

/** The README's lines ("The FastAPI tutorial's routes"), for the address this page was asked at. */
function curlLines(host: string): string {
  return [
    `curl ${host}/count`,
    `curl -X POST ${host}/add/ -H 'content-type: application/json' \\`,
    `  -d '{"orderdate":"2023-03-10","customerid":9999,"netamount":23.0,"tax":2.0}'`,
  ].join("\n");
}

function page(host: string): string {
  const linkItems = links
    .map(
      ([href, title, what]) =>
        `<li><a class="card" href="${href}"><strong>${title}</strong> <code>${href}</code><span>${what}</span></a></li>`,
    )
    .join("\n  ");
  return `<!doctype html>
<html lang="en">
<head>
${pageHead}
<title>dellstore-orders</title>
<style>${pageStyle}${indexStyle}</style>
</head>
<body>
<header class="bar">
  <a class="brand" href="/"><img src="/favicon.ico" alt=""> dellstore-orders</a>
  <nav><a href="/live">Live</a><a href="/docs">API docs</a></nav>
</header>
<main>
  <h1>dellstore-orders</h1>
  <p class="lede">An order service over PostgreSQL's <em>dellstore</em> sample data: the FastAPI tutorial's REST
  routes, a typed tRPC API at <code>/trpc</code>, counts cached in Valkey and kept live.</p>
  <ul class="links">
  ${linkItems}
  </ul>
  <h2>Try it</h2>
  <p class="lede">Count the orders, then add one:</p>
  <pre><code>${escapeHtml(curlLines(host))}</code></pre>
  <p class="lede">TypeScript apps call the same API through the typed client, <code>@dellstore/client</code>; the API
  document is <a href="/openapi.json">/openapi.json</a>.</p>
</main>
</body>
</html>
`;
}

/** The address as the client asked for it, else the default one. */
const hostOf = (req: FastifyRequest) => req.headers.host ?? "127.0.0.1:8000";

export function indexPageRoutes(app: FastifyInstance): void {
  app.get("/", { schema: { hide: true } }, (req, reply) =>
    reply
      .headers(pageSecurityHeaders({ script: false }))
      .type("text/html; charset=utf-8")
      .send(page(hostOf(req))),
  );
  app.get("/favicon.ico", { schema: { hide: true } }, (_req, reply) =>
    reply.header("cache-control", "public, max-age=86400").type("image/svg+xml").send(faviconSvg),
  );
}
