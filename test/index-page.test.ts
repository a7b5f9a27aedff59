// GET / is a small page saying what this is, linking what a person looks for
// (/live, /docs, /health, /metrics) and showing the curl lines to try, aimed
// at the address it was asked at; /favicon.ico is an icon, not a 404.
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url }));

/** Text as a browser shows it: tags dropped, the entities the page uses decoded. */
const textOf = (html: string) =>
  html
    .replace(/<[^>]+>/g, "")
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");

describe("GET /", () => {
  it("is an HTML page linking /live, /docs, /health and /metrics, each of which answers", async () => {
    const res = await fetch(`${server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    // Nothing but its own styles runs or loads: no script at all.
    expect(res.headers.get("content-security-policy")).toMatch(/default-src 'none'/);
    expect(res.headers.get("content-security-policy")).not.toMatch(/script-src/);
    const html = await res.text();
    expect(html).toMatch(/<title>dellstore-orders<\/title>/);
    expect(html).toMatch(/<meta name="viewport" content="width=device-width, initial-scale=1">/);
    const links = [...html.matchAll(/<a [^>]*href="([^"]+)"/g)].map((m) => m[1]);
    expect(links).toEqual(expect.arrayContaining(["/live", "/docs", "/health", "/metrics", "/openapi.json"]));
    for (const link of links.filter((l) => l?.startsWith("/"))) {
      const linked = await fetch(`${server.url}${link}`);
      expect(linked.status, link).toBe(200);
      await linked.arrayBuffer();
    }
  });

  it("shows the README's two curl lines, for the address it was asked at", async () => {
    const host = new URL(server.url).host;
    const text = textOf(await (await fetch(`${server.url}/`)).text());
    expect(text).toContain(`curl ${host}/count`);
    expect(text).toContain(
      `curl -X POST ${host}/add/ -H 'content-type: application/json' \\\n  -d '{"orderdate":"2023-03-10","customerid":9999,"netamount":23.0,"tax":2.0}'`,
    );
  });

  it("escapes the Host it quotes", async () => {
    const { port } = new URL(server.url);
    // A loopback name, so it is served; node:http takes "<" in a header value.
    const { status, html } = await new Promise<{ status: number; html: string }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: "/", headers: { host: "localhost:1<b>" } }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, html: body }));
      });
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(html).toContain("curl localhost:1&lt;b&gt;/count");
    expect(html).not.toContain("<b>");
  });

  it("answers HEAD as GET, without a body", async () => {
    const head = await fetch(`${server.url}/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await head.text()).toBe("");
  });
});

describe("/favicon.ico", () => {
  it("is an icon a browser shows, not a 404", async () => {
    const res = await fetch(`${server.url}/favicon.ico`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/svg+xml");
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/);
    expect(await res.text()).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*viewBox=/);
  });
});
