// The container path can't run here (no Docker engine): the Dockerfile and
// docker-compose.yml are checked statically against the contract, and the
// commands they run are run here against the local services.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createTestDatabase } from "./support/database.ts";
import { projectRoot, run } from "./support/run.ts";

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  profiles?: string[];
}
const compose = parse(readFileSync(join(projectRoot, "docker-compose.yml"), "utf8")) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const dockerfile = readFileSync(join(projectRoot, "Dockerfile"), "utf8");
const instructions = dockerfile
  .replace(/\\\n\s*/g, " ")
  .split("\n")
  .filter((line) => /^[A-Z]+ /.test(line))
  .map((line) => {
    const [name = "", ...rest] = line.split(" ");
    return { name, args: rest.join(" ") };
  });
// The environment variables the contract and the configuration define.
const contractVariables = [
  "DATABASE_URL",
  "PG_SERVICE_URI",
  "VALKEY_URL",
  "VALKEY_SERVICE_URI",
  "VALKEY_CLUSTER_NODES",
  "CACHE_TTL_SECONDS",
  "CACHE_TIMEOUT_SECONDS",
  "CACHE_PREFIX",
  "PORT",
  "HOST",
  "LOG_LEVEL",
  "API_TOKEN",
  "DATA_DIR",
];

describe("docker-compose.yml", () => {
  const { services } = compose;

  it("runs PostgreSQL 17 and Valkey 8 with healthchecks, PostgreSQL on a named volume", () => {
    expect(services.postgres?.image).toBe("postgres:17");
    expect(services.valkey?.image).toBe("valkey/valkey:8");
    expect(services.postgres?.healthcheck?.test.join(" ")).toContain("pg_isready");
    expect(services.valkey?.healthcheck?.test.join(" ")).toContain("ping");
    const [volume] = (services.postgres?.volumes?.[0] ?? "").split(":");
    expect(Object.keys(compose.volumes)).toContain(volume);
  });

  it("migrates and seeds once, then starts the app wired to both, in that order", () => {
    const { migrate, app } = services;
    expect(migrate?.build).toBe(".");
    expect(migrate?.command?.join(" ")).toMatch(/node dist\/db\/migrate\.js && node dist\/db\/seed\.js --if-empty/);
    expect(migrate?.depends_on).toEqual({ postgres: { condition: "service_healthy" } });
    expect(app?.build).toBe(".");
    expect(app?.depends_on).toEqual({
      migrate: { condition: "service_completed_successfully" },
      valkey: { condition: "service_healthy" },
    });
    expect(app?.ports).toEqual(["127.0.0.1:8000:8000"]);
    expect(new URL(app?.environment?.DATABASE_URL ?? "").hostname).toBe("postgres");
    expect(new URL(app?.environment?.VALKEY_URL ?? "").hostname).toBe("valkey");
    expect(app?.environment?.DATABASE_URL).toBe(migrate?.environment?.DATABASE_URL);
    expect(app?.environment?.HOST).toBe("0.0.0.0");
  });

  it("uses only the contract's environment variables, and only services it defines", () => {
    for (const [name, service] of Object.entries(services)) {
      if (name === "postgres") continue; // the image's own variables
      for (const variable of Object.keys(service.environment ?? {})) expect(contractVariables).toContain(variable);
      for (const dependency of Object.keys(service.depends_on ?? {}))
        expect(Object.keys(services)).toContain(dependency);
    }
    // The app is opt-in, so `docker compose up -d` gives just the two servers for local development.
    expect(services.app?.profiles).toEqual(["app"]);
    expect(services.postgres?.profiles).toBeUndefined();
  });
});

describe("Dockerfile", () => {
  const froms = instructions.filter((i) => i.name === "FROM");
  const runtime = instructions.slice(instructions.lastIndexOf(froms.at(-1) as (typeof instructions)[number]));

  it("builds in one stage and runs production dependencies only in another", () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    // The active LTS, inside the engines range.
    for (const from of froms) expect(from.args).toMatch(/^node:24/);
    expect(runtime.some((i) => i.name === "RUN" && i.args.includes("npm ci --omit=dev"))).toBe(true);
    expect(runtime.some((i) => i.name === "COPY" && /--from=build \/app\/dist/.test(i.args))).toBe(true);
  });

  it("runs as a non-root user, checks /health, and starts the compiled server", () => {
    const user = runtime.find((i) => i.name === "USER")?.args;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)$/);
    expect(runtime.find((i) => i.name === "HEALTHCHECK")?.args).toContain("http://127.0.0.1:8000/health");
    expect(runtime.find((i) => i.name === "CMD")?.args).toBe('["node", "dist/server/main.js"]');
    expect(runtime.find((i) => i.name === "EXPOSE")?.args).toBe("8000");
  });

  it("copies only what exists, and .dockerignore keeps local state out", () => {
    for (const copy of instructions.filter((i) => i.name === "COPY" && !i.args.startsWith("--from"))) {
      for (const source of copy.args.split(" ").slice(0, -1))
        expect(existsSync(join(projectRoot, source)), source).toBe(true);
    }
    const ignored = readFileSync(join(projectRoot, ".dockerignore"), "utf8").split("\n");
    for (const path of ["node_modules", "dist", ".data", ".git"]) expect(ignored).toContain(path);
  });
});

describe("the commands the container runs", () => {
  it("migrate and seed a blank database once, and leave it alone the second time", async () => {
    const db = await createTestDatabase("blank");
    try {
      const oneShot = () =>
        run("sh", ["-c", "node dist/db/migrate.js && node dist/db/seed.js --if-empty"], { DATABASE_URL: db.url });
      const first = await oneShot();
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain("generated customers: 20000 rows, orders: 12000 rows");
      const second = await oneShot();
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toContain("already holds data: nothing loaded");
      const [{ n } = { n: 0 }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders`;
      expect(n).toBe(12_000);
    } finally {
      await db.drop();
    }
  });
});
