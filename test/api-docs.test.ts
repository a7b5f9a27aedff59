// /openapi.json, generated from the REST routes' schemas and the router's
// declared procedures, and /docs, Swagger UI from the plugin's own files, as
// FastAPI serves them.
import { readdirSync } from "node:fs";
import { request } from "node:http";
import SwaggerParser from "@apidevtools/swagger-parser";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { documented } from "../server/routers/documented.ts";
import { procedures } from "../server/routers/index.ts";
import { publicProcedure } from "../server/trpc.ts";
import { startTestApp, useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url }));

interface Operation {
  parameters?: { name: string; schema?: unknown; content?: Record<string, { schema: unknown; example: unknown }> }[];
  requestBody?: {
    content: Record<string, { schema: { required: string[]; properties: Record<string, unknown> }; example?: unknown }>;
  };
  summary?: string;
  tags?: string[];
  responses: Record<
    string,
    {
      $ref?: string;
      description?: string;
      headers?: Record<string, unknown>;
      content?: Record<string, { schema: unknown }>;
    }
  >;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  tags?: { name: string; description?: string }[];
}
const documentOf = async () => (await (await fetch(`${server.url}/openapi.json`)).json()) as Document;

describe("/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document of the REST routes and every tRPC procedure", async () => {
    const res = await fetch(`${server.url}/openapi.json`);
    expect(res.status).toBe(200);
    const document = (await res.json()) as Document;
    expect(document.openapi).toBe("3.1.0");
    await SwaggerParser.validate(structuredClone(document) as never);
    expect(Object.keys(document.paths).sort()).toEqual(
      [
        "/count",
        "/count/",
        "/count/stream",
        "/live",
        "/add/",
        "/add",
        "/health",
        "/metrics",
        "/trpc/orders.count",
        "/trpc/orders.monthly",
        "/trpc/orders.add",
        "/trpc/orders.watchCount",
        "/trpc/customers.summary",
        "/trpc/{procedures}",
      ].sort(),
    );
  });

  it("says on every operation what every answer obeys: 405 with Allow, 421, Retry-After on 503 and 504", async () => {
    const document = await documentOf();
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect(operation.responses["405"], where).toBeDefined();
        expect(operation.responses["421"], where).toEqual({ $ref: "#/components/responses/MisdirectedRequest" });
        for (const status of ["503", "504"]) {
          const response = operation.responses[status];
          if (response) expect(response.headers, `${where} ${status}`).toHaveProperty("Retry-After");
        }
      }
    }
    expect(document.paths["/add/"]?.post?.responses["503"]).toBeDefined();
    expect(document.paths["/trpc/orders.add"]?.post?.responses["504"]).toBeDefined();
  });

  it("promises of a write's 503 what is true of that attempt, not of its key", async () => {
    const document = await documentOf();
    for (const path of ["/add/", "/trpc/orders.add"]) {
      const said = document.paths[path]?.post?.responses["503"]?.description;
      // A retry with the same key, or another request carrying it, may still store the order.
      expect(said, path).toMatch(/this attempt stored nothing, and never will/);
      expect(said, path).toMatch(/retry with the same (Idempotency-Key|idempotencyKey)/);
    }
  });

  it("groups every operation under a described tag: none untagged, none under Swagger UI's 'default'", async () => {
    const document = await documentOf();
    const declared = new Map((document.tags ?? []).map((tag) => [tag.name, tag.description]));
    const tagOf = new Map<string, string>();
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect(operation.tags, where).toHaveLength(1);
        const [tag = ""] = operation.tags ?? [];
        expect(tag, where).not.toBe("default");
        expect(declared.get(tag), `${where}: tag ${tag} has a description`).toMatch(/\w{3,}/);
        tagOf.set(where, tag);
      }
    }
    // The FastAPI tutorial's routes together, tRPC's procedures under their own.
    const rest = tagOf.get("GET /count");
    expect(rest).toMatch(/REST/);
    for (const where of ["GET /count/", "POST /add/", "POST /add"]) expect(tagOf.get(where), where).toBe(rest);
    expect(tagOf.get("GET /trpc/orders.count")).toBe("tRPC");
    expect(tagOf.get("POST /trpc/orders.add")).toBe("tRPC");
    expect(tagOf.get("GET /trpc/{procedures}")).toBe("tRPC");
    // Every declared tag is used.
    expect([...declared.keys()].sort()).toEqual([...new Set(tagOf.values())].sort());
  });

  it("describes tRPC's batch form, for queries by GET and mutations by POST", async () => {
    const batch = (await documentOf()).paths["/trpc/{procedures}"];
    const pattern = (operation?: Operation) =>
      new RegExp(
        (operation?.parameters?.find((p) => p.name === "procedures")?.schema as { pattern?: string } | undefined)
          ?.pattern ?? "^$",
      );
    expect(pattern(batch?.get).test("orders.count,customers.summary,orders.count")).toBe(true);
    expect(pattern(batch?.get).test("orders.count,orders.add")).toBe(false);
    expect(pattern(batch?.post).test("orders.add,orders.add")).toBe(true);
    expect(batch?.get?.parameters?.map((p) => p.name)).toEqual(["procedures", "batch", "input"]);
  });

  it("describes the inputs as the routes validate them", async () => {
    const document = await documentOf();
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

  it.each(["orders.monthly", "customers.summary", "orders.count"])(
    "lets a caller without TypeScript call %s from its description: input, output and errors",
    async (procedure) => {
      const operation = (await documentOf()).paths[`/trpc/${procedure}`]?.get;
      const input = operation?.parameters?.find((p) => p.name === "input")?.content?.["application/json"];
      expect(input?.schema).toMatchObject({ properties: { json: expect.any(Object) }, required: ["json"] });
      expect(Object.keys(operation?.responses ?? {})).toEqual(expect.arrayContaining(["200", "400", "503"]));
      // What Swagger UI sends: the example, as JSON, URL-encoded.
      const res = await fetch(
        `${server.url}/trpc/${procedure}?input=${encodeURIComponent(JSON.stringify(input?.example))}`,
      );
      expect(res.status).toBe(200);
      const body = (await res.json()) as { result: { data: { json: unknown } } };
      type Described = {
        properties: {
          result: { properties: { data: { properties: { json: { properties?: object; items?: object } } } } };
        };
      };
      const schema = operation?.responses["200"]?.content?.["application/json"]?.schema as Described | undefined;
      const output = schema?.properties.result.properties.data.properties.json ?? {};
      const data = body.result.data.json;
      const item = Array.isArray(data) ? data[0] : data;
      const described = Array.isArray(data)
        ? (output.items as { properties?: object } | undefined)?.properties
        : output.properties;
      expect(Object.keys(item as object).sort()).toEqual(Object.keys(described ?? {}).sort());
    },
  );

  it("describes orders.add as a POST with its JSON body", async () => {
    const operation = (await documentOf()).paths["/trpc/orders.add"]?.post;
    const body = operation?.requestBody?.content["application/json"];
    expect(body?.schema).toMatchObject({ properties: { json: { required: ["customerId", "netAmount", "tax"] } } });
    expect(Object.keys(operation?.responses ?? {})).toEqual(
      expect.arrayContaining(["200", "400", "401", "404", "415"]),
    );
  });
});

describe("a procedure added to the router", () => {
  it("is documented with no other edit: its path, summary, input, output and errors", async () => {
    const echo = documented(
      {
        kind: "query",
        summary: "Echoes a word",
        input: z.object({ word: z.string().min(1) }),
        output: z.object({ echoed: z.string() }),
        errors: { NOT_FOUND: "no such word" },
        example: { word: "hello" },
      },
      publicProcedure.input(z.object({ word: z.string().min(1) })).query(({ input }) => ({ echoed: input.word })),
    );
    const ticks = documented(
      {
        kind: "subscription",
        summary: "Counts up",
        input: z.object({ from: z.number().int() }),
        output: z.object({ tick: z.number().int() }),
        example: { from: 1 },
      },
      publicProcedure.input(z.object({ from: z.number().int() })).subscription(async function* ({ input }) {
        yield { tick: input.from };
      }),
    );
    const throwaway = await startTestApp(
      { DATABASE_URL: db.url },
      { api: { procedures: { ...procedures, extra: { echo, ticks } } } },
    );
    try {
      const document = (await (await fetch(`${throwaway.url}/openapi.json`)).json()) as Document;
      await SwaggerParser.validate(structuredClone(document) as never);
      const operation = document.paths["/trpc/extra.echo"]?.get;
      expect(operation?.summary).toBe("Echoes a word");
      const input = operation?.parameters?.find((p) => p.name === "input")?.content?.["application/json"];
      expect(input).toMatchObject({
        schema: { properties: { json: { properties: { word: { type: "string", minLength: 1 } } } } },
        example: { json: { word: "hello" } },
      });
      expect(Object.keys(operation?.responses ?? {})).toEqual(expect.arrayContaining(["200", "400", "404", "503"]));
      const res = await fetch(
        `${throwaway.url}/trpc/extra.echo?input=${encodeURIComponent(JSON.stringify(input?.example))}`,
      );
      expect(await res.json()).toEqual({ result: { data: { json: { echoed: "hello" } } } });
      expect((await fetch(`${throwaway.url}/trpc/extra.echo`, { method: "DELETE" })).headers.get("allow")).toBe(
        "GET, HEAD",
      );
      const subscription = document.paths["/trpc/extra.ticks"]?.get;
      expect(subscription?.summary).toBe("Counts up");
      expect(Object.keys(subscription?.responses["200"]?.content ?? {})).toEqual(["text/event-stream"]);
    } finally {
      await throwaway.close();
    }
  });

  it("stops start-up when it isn't declared, rather than serve it undocumented", async () => {
    const undeclared = publicProcedure.query(() => "?");
    await expect(
      startTestApp({ DATABASE_URL: db.url }, { api: { procedures: { extra: { undeclared } } } }),
    ).rejects.toThrow(/extra\.undeclared is not a declared procedure/);
  });
});

describe("/docs", () => {
  it("renders Swagger UI from the package's own files, with no CDN, reading the same document", async () => {
    const page = await fetch(`${server.url}/docs`, { redirect: "follow" });
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.length).toBeGreaterThan(2);
    for (const asset of assets) {
      expect(asset).toMatch(/^\/docs\//);
      const res = await fetch(`${server.url}${asset}`);
      expect(res.status, asset).toBe(200);
      await res.arrayBuffer();
    }
    const bundle = await fetch(`${server.url}/docs/static/swagger-ui-bundle.js`);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    const initializer = await (await fetch(`${server.url}/docs/static/swagger-initializer.js`)).text();
    expect(initializer).toContain("resolveUrl('./json')");
    expect(await (await fetch(`${server.url}/docs/json`)).json()).toEqual(await documentOf());
  });

  it("leaves no file descriptor open after 200 aborted downloads of an asset", async () => {
    const descriptors = () => readdirSync("/proc/self/fd").length;
    const { port } = new URL(server.url);
    const abortOne = () =>
      new Promise<void>((resolve) => {
        const req = request({ host: "127.0.0.1", port, path: "/docs/static/swagger-ui-bundle.js" }, (res) => {
          // The first bytes are here, so the server has the file open: hang up mid-download.
          res.once("data", () => {
            req.destroy();
            resolve();
          });
        });
        req.on("error", () => resolve());
        req.end();
      });
    await abortOne();
    const before = descriptors();
    for (let i = 0; i < 200; i++) await abortOne();
    // The server sees each hang-up asynchronously: wait for its connections to be gone.
    const idle = async () => {
      for (;;) {
        const open = await new Promise<number>((resolve, reject) =>
          server.app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
        );
        if (open === 0) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await idle();
    expect(descriptors() - before).toBeLessThan(10);
  });
});
