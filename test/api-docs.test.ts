// /openapi.json, generated from the REST routes' zod schemas, and /docs, as FastAPI serves them.
import SwaggerParser from "@apidevtools/swagger-parser";
import { describe, expect, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url }));

interface Document {
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: { name: string; schema: unknown }[];
        requestBody?: {
          content: Record<string, { schema: { required: string[]; properties: Record<string, unknown> } }>;
        };
      }
    >
  >;
}

describe("/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document of the REST routes", async () => {
    const res = await fetch(`${server.url}/openapi.json`);
    expect(res.status).toBe(200);
    const document = (await res.json()) as Document & { openapi: string };
    expect(document.openapi).toBe("3.1.0");
    await SwaggerParser.validate(structuredClone(document) as never);
    expect(Object.keys(document.paths)).toEqual(["/count", "/add/", "/health", "/metrics"]);
  });

  it("describes the inputs as the routes validate them", async () => {
    const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as Document;
    expect(document.paths["/count"]?.get?.parameters).toEqual([
      expect.objectContaining({
        name: "customerid",
        schema: expect.objectContaining({ type: "string", pattern: "^\\d+$" }),
      }),
    ]);
    const body = document.paths["/add/"]?.post?.requestBody?.content["application/json"]?.schema;
    expect(body?.required).toEqual(["customerid", "netamount", "tax"]);
    expect(body?.properties.orderdate).toMatchObject({ type: "string", pattern: "^\\d{4}-\\d{2}-\\d{2}$" });
    expect(body?.properties.netamount).toMatchObject({ anyOf: [{ type: "number" }, { type: "string" }] });
  });
});

describe("/docs", () => {
  it("renders Swagger UI from the package's own files, with no CDN", async () => {
    const page = await fetch(`${server.url}/docs`);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('url: "/openapi.json"');
    expect(html).not.toMatch(/https?:\/\//);
    for (const asset of ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"]) {
      const res = await fetch(`${server.url}${asset}`);
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    }
  });
});
