// No password reaches a log line, an error message or a response: not from a
// malformed URL (ERR_INVALID_URL quotes its input), not from a well-formed one
// the server connects with, whatever it logs at debug level.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../server/logger.ts";
import { maskSecrets } from "../server/secrets.ts";
import { useTestDatabase } from "./support/database.ts";
import { lastJson, run } from "./support/run.ts";
import { shippedServer, startServerProcess } from "./support/server-process.ts";
import { withPassword } from "./support/urls.ts";

const valkeyPassword = "Valkey-Secret-Password-42";
const db = useTestDatabase("seeded");
const serve = shippedServer;

describe("maskSecrets", () => {
  it.each([
    ["postgres://admin:s3cret@db:5432/shop", "postgres://admin:***@db:5432/shop"],
    ["postgres://admin:s3c@ret@db:x/shop", "postgres://admin:***@db:x/shop"],
    ["redis://:s3cret@cache:6379", "redis://:***@cache:6379"],
    [
      "failed: rediss://default:s3cret@cache:6380 and postgresql://u:s3cret@h/d",
      "failed: rediss://default:***@cache:6380 and postgresql://u:***@h/d",
    ],
    [
      "postgres://db/shop?user=a&password=s3cret&sslmode=require",
      "postgres://db/shop?user=a&password=***&sslmode=require",
    ],
    ["postgres://admin@db/shop", "postgres://admin@db/shop"],
  ])("%s → %s", (text, masked) => {
    expect(maskSecrets(text)).toBe(masked);
  });
});

describe("the logger", () => {
  it("masks passwords in messages, fields and an error's own properties (err.input)", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = createLogger("debug", sink);
    let invalid: unknown;
    try {
      new URL("postgres://admin:s3cret@db:port/shop");
    } catch (error) {
      invalid = error;
    }
    log.fatal({ err: invalid }, "start-up failed");
    log.error({ cause: invalid, target: new URL("redis://:s3cret@cache:6379") }, "at postgres://a:s3cret@h/d");
    log.warn(new Error("no answer from rediss://default:s3cret@cache:6380"));
    expect(lines).toHaveLength(3);
    expect(lines.join("")).not.toContain("s3cret");
    expect(JSON.parse(lines[0] as string).err).toMatchObject({
      code: "ERR_INVALID_URL",
      input: "postgres://admin:***@db:port/shop",
    });
    expect(JSON.parse(lines[2] as string).msg).toBe("no answer from rediss://default:***@cache:6380");
  });

  it("masks them the same in the pretty format a terminal gets", () => {
    let written = "";
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written += chunk;
        done();
      },
    });
    const log = createLogger("debug", sink, "pretty");
    let invalid: unknown;
    try {
      new URL("postgres://admin:s3cret@db:port/shop");
    } catch (error) {
      invalid = error;
    }
    log.fatal({ err: invalid }, "start-up failed");
    log.warn({ target: new URL("redis://:s3cret@cache:6379") }, "at postgres://a:s3cret@h/d");
    expect(written).toContain("FATAL: start-up failed");
    expect(written).toContain("postgres://admin:***@db:port/shop");
    expect(written).toContain("WARN: at postgres://a:***@h/d");
    expect(written).not.toContain("s3cret");
  });
});

describe("the server process", () => {
  it("refuses a malformed DATABASE_URL, naming it with the password masked", async () => {
    const result = await run(serve[0], serve.slice(1), { DATABASE_URL: "postgres://admin:s3cret-Pa55@db:port/shop" });
    expect(result.code).toBe(1);
    expect((lastJson(result.stdout) as { msg: string }).msg).toBe(
      "invalid configuration: DATABASE_URL must be a URL like postgres://user@host:5432/dbname (with a password: user:password@host), got 'postgres://admin:***@db:port/shop'",
    );
    expect(result.stdout + result.stderr).not.toContain("s3cret-Pa55");
  });

  it("refuses an API_TOKEN with whitespace inside", async () => {
    const result = await run(serve[0], serve.slice(1), { API_TOKEN: "two words-0123456789" });
    expect(result.code).toBe(1);
    expect((lastJson(result.stdout) as { msg: string }).msg).toMatch(
      /^invalid configuration: API_TOKEN must not contain spaces or other whitespace \(it is sent as `Authorization: Bearer <API_TOKEN>`\)$/,
    );
    expect(result.stdout + result.stderr).not.toContain("two words");
  });

  it("with passwords in DATABASE_URL and VALKEY_URL, shows neither in any log line or response", async () => {
    const database = withPassword(db.url, "Database-Secret-Password-7");
    // This Valkey has no password: AUTH fails and the server runs uncached, logging why.
    const server = await startServerProcess(
      {
        DATABASE_URL: database.url,
        VALKEY_URL: `redis://default:${valkeyPassword}@127.0.0.1:6379`,
        LOG_LEVEL: "trace",
      },
      serve,
    );
    const responses: string[] = [];
    try {
      const requests: [string, RequestInit?][] = [
        ["/health"],
        ["/metrics"],
        ["/count"],
        ["/count?customerid=abc"],
        ["/count?customerid=99999999999"],
        [
          "/add/",
          {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: '{"customerid":1,"netamount":1,"tax":1}',
          },
        ],
        [
          "/add/",
          {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: '{"customerid":999999,"netamount":1,"tax":1}',
          },
        ],
        ["/add/", { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" }],
        ["/trpc/orders.count?input=%7B%22json%22%3A%7B%22customerId%22%3A%22x%22%7D%7D"],
        ["/trpc/nope"],
        ["/openapi.json"],
      ];
      for (const [path, init] of requests) {
        const res = await fetch(`${server.url}${path}`, init);
        responses.push(`${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`);
      }
    } finally {
      await server.stop();
    }
    const everything = [server.output(), ...responses].join("\n");
    expect(server.output()).toMatch(/"level":/);
    for (const secret of [database.password, valkeyPassword]) expect(everything).not.toContain(secret);
  });
});
