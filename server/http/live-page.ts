// GET /live: a page showing the total and a chosen customer's order count
// updating live (orders.watchCount through the typed client), each in a card,
// with a form to add an order; laid out for a desktop and a phone, in the
// style the index page shares (page-style.ts). Its script is bundled by
// esbuild (live/page/).
import { readFile } from "node:fs/promises";
import type { FastifyInstance } from "fastify";
import { pageHead, pageSecurityHeaders, pageStyle } from "./page-style.ts";

const securityHeaders = pageSecurityHeaders({ script: true });

const liveStyle = `
.heading { display: flex; align-items: center; justify-content: space-between; gap: .75rem 1rem; flex-wrap: wrap; }
.status {
  display: inline-flex; align-items: center; gap: .45rem; margin: 0; padding: .2rem .75rem; border-radius: 999px;
  border: 1px solid var(--border); background: var(--card); font-size: .88rem; font-weight: 600; max-width: 100%;
  overflow-wrap: anywhere;
}
.status::before { content: ""; flex: none; width: .6rem; height: .6rem; border-radius: 50%; background: var(--pending); }
.status[data-state="live"]::before { background: var(--live); }
.status[data-state="failed"] { color: var(--error); }
.status[data-state="failed"]::before { background: var(--error); }
.card h2 { color: var(--muted); font-size: .8rem; font-weight: 650; text-transform: uppercase; letter-spacing: .06em; margin-bottom: .35rem; }
.watched { min-height: 5.4rem; }
.caption { margin: 0; font-weight: 600; }
.figure { margin: 0; display: flex; align-items: baseline; flex-wrap: wrap; gap: .45rem; }
.number { font-size: clamp(2.3rem, 9vw, 3rem); font-weight: 700; line-height: 1.15; font-variant-numeric: tabular-nums; letter-spacing: -.02em; }
.unit { color: var(--muted); font-size: 1.15rem; }
.empty { color: var(--muted); margin: .25rem 0 0; }
.watch { margin-top: 1rem; }
.row { display: flex; gap: .5rem; margin-top: .3rem; }
.fields { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 13rem), 1fr)); gap: 1rem; }
.field { display: grid; gap: .3rem; align-content: start; min-width: 0; }
.actions { grid-column: 1 / -1; }
@media (max-width: 30rem) { .actions button { width: 100%; } }
.notice { margin: 1rem 0 0; padding: .65rem .9rem; border-radius: 8px; overflow-wrap: anywhere; }
.notice[data-kind="ok"] { background: var(--ok-bg); color: var(--ok); }
.notice[data-kind="error"] { background: var(--error-bg); color: var(--error); }
.notice[data-kind="busy"] { color: var(--muted); padding-left: 0; }
`;

const html = `<!doctype html>
<html lang="en">
<head>
${pageHead}
<title>Live order counts · dellstore-orders</title>
<style>${pageStyle}${liveStyle}</style>
<script type="module" src="/live/page.js"></script>
</head>
<body>
<header class="bar">
  <a class="brand" href="/"><img src="/favicon.ico" alt=""> dellstore-orders</a>
  <nav><a href="/docs">API docs</a></nav>
</header>
<main>
  <div class="heading">
    <h1>Live order counts</h1>
    <p id="connection" class="status" role="status" data-state="connecting">Connecting…</p>
  </div>
  <p class="lede">Each count changes within a second of any order written: with this form, the API, or psql.</p>
  <div class="cards">
    <section id="total-card" class="card" aria-labelledby="total-heading">
      <h2 id="total-heading">All orders</h2>
      <p class="caption">Every customer</p>
      <p id="total-figure" class="figure" aria-live="polite" aria-atomic="true"><span id="total" class="number">…</span> <span id="total-unit" class="unit"></span></p>
    </section>
    <section id="customer-card" class="card" aria-labelledby="customer-heading">
      <h2 id="customer-heading">One customer</h2>
      <div id="customer-watched" class="watched" aria-live="polite" aria-atomic="true">
        <p id="customer-label" class="caption" hidden></p>
        <p id="customer-figure" class="figure" hidden><span id="customer-count" class="number"></span> <span id="customer-unit" class="unit"></span></p>
        <p id="customer-empty" class="empty">Choose a customer to follow their orders.</p>
      </div>
      <form id="watch" class="watch">
        <label for="watch-customer">Customer to watch (id)</label>
        <div class="row">
          <input id="watch-customer" name="customerId" type="number" inputmode="numeric" min="1" step="1" required placeholder="9999">
          <button type="submit">Watch</button>
        </div>
      </form>
    </section>
  </div>
  <section id="add-card" class="card" aria-labelledby="add-heading">
    <h2 id="add-heading">Add an order</h2>
    <form id="add" class="fields">
      <div class="field">
        <label for="add-customer">Customer (id)</label>
        <input id="add-customer" name="customerId" type="number" inputmode="numeric" min="1" step="1" required>
      </div>
      <div class="field">
        <label for="add-net">Net amount</label>
        <input id="add-net" name="netAmount" inputmode="decimal" pattern="\\d+(\\.\\d{1,2})?" required value="10.00">
      </div>
      <div class="field">
        <label for="add-tax">Tax</label>
        <input id="add-tax" name="tax" inputmode="decimal" pattern="\\d+(\\.\\d{1,2})?" required value="0.80">
      </div>
      <div class="field">
        <label for="add-date">Order date</label>
        <input id="add-date" name="orderDate" type="date" aria-describedby="add-date-hint">
        <span id="add-date-hint" class="hint">Empty for today.</span>
      </div>
      <div class="field">
        <label for="add-token">API token</label>
        <input id="add-token" name="token" type="password" autocomplete="off" aria-describedby="add-token-hint">
        <span id="add-token-hint" class="hint">Only if the server requires one.</span>
      </div>
      <div class="actions"><button type="submit">Add order</button></div>
    </form>
    <p id="add-status" class="notice" role="status" aria-live="polite" hidden></p>
  </section>
</main>
</body>
</html>
`;

let script: Promise<string> | undefined;

/** `npm run build`'s bundle when running from dist, else bundled now (once) from the sources. */
function pageScript(): Promise<string> {
  script ??= readFile(new URL("../live/page.js", import.meta.url), "utf8").catch(async () => {
    const { bundleLivePage } = await import("../live/page/bundle.ts");
    return bundleLivePage();
  });
  script.catch(() => {
    script = undefined; // a failed bundle is tried again on the next request
  });
  return script;
}

export function livePageRoutes(app: FastifyInstance): void {
  app.get("/live", { schema: { summary: "The live page: order counts updating as orders are added" } }, (_req, reply) =>
    reply.headers(securityHeaders).type("text/html; charset=utf-8").send(html),
  );
  app.get("/live/page.js", { schema: { hide: true } }, async (_req, reply) =>
    reply
      .headers(securityHeaders)
      .header("cache-control", "no-cache")
      .type("text/javascript; charset=utf-8")
      .send(await pageScript()),
  );
}
