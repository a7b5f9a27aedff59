// GET /live: a small page showing the total and a chosen customer's order
// count updating live (orders.watchCount through the typed client), with a
// form to add an order. Its script is bundled by esbuild (live/page/).
import { readFile } from "node:fs/promises";
import type { FastifyInstance } from "fastify";

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Live order counts · dellstore-orders</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }
  output { font-size: 2rem; font-weight: 600; font-variant-numeric: tabular-nums; }
  section { border: 1px solid #bbb; border-radius: .5rem; padding: 1rem; margin: 1rem 0; }
  label { display: block; margin: .5rem 0 .2rem; }
  input, button { font: inherit; padding: .3rem .5rem; }
  :focus-visible { outline: 3px solid #1d4ed8; outline-offset: 2px; }
  #connection[data-state="failed"] { color: #b91c1c; }
</style>
<script type="module" src="/live/page.js"></script>
</head>
<body>
<main>
  <h1>Live order counts</h1>
  <p id="connection" role="status">Connecting…</p>
  <section aria-labelledby="total-heading">
    <h2 id="total-heading">All orders</h2>
    <output id="total" aria-live="polite" aria-atomic="true">…</output>
  </section>
  <section aria-labelledby="customer-heading">
    <h2 id="customer-heading">One customer's orders</h2>
    <form id="watch">
      <label for="watch-customer">Customer to watch (id)</label>
      <input id="watch-customer" name="customerId" type="number" min="1" step="1" required>
      <button type="submit">Watch</button>
    </form>
    <p><span id="customer-label">No customer chosen.</span>
      <output id="customer-count" aria-live="polite" aria-atomic="true"></output></p>
  </section>
  <section aria-labelledby="add-heading">
    <h2 id="add-heading">Add an order</h2>
    <form id="add">
      <label for="add-customer">Customer (id)</label>
      <input id="add-customer" name="customerId" type="number" min="1" step="1" required>
      <label for="add-net">Net amount</label>
      <input id="add-net" name="netAmount" inputmode="decimal" pattern="\\d+(\\.\\d{1,2})?" required value="10.00">
      <label for="add-tax">Tax</label>
      <input id="add-tax" name="tax" inputmode="decimal" pattern="\\d+(\\.\\d{1,2})?" required value="0.80">
      <label for="add-date">Order date (optional, YYYY-MM-DD)</label>
      <input id="add-date" name="orderDate" type="date">
      <label for="add-token">API token (if the server requires one)</label>
      <input id="add-token" name="token" type="password" autocomplete="off">
      <p><button type="submit">Add order</button></p>
    </form>
    <p id="add-status" role="status" aria-live="polite"></p>
  </section>
</main>
</body>
</html>
`;

/** The page's own resources only: no inline script, no other origin. */
const securityHeaders = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
};

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
