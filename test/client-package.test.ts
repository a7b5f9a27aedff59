// Another TypeScript app imports the client by package name, through package.json
// `exports`: its calls type-check, a wrong input doesn't, and it runs; the tarball
// npm would publish carries the npm page's README and the licence. (.ci/run
// installs the packed tarball the same way and checks its size and contents.)
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { projectRoot, run } from "./support/run.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url }));
let app = "";

const program = (countInput: string) => `import { createClient, type RouterOutputs } from "@dellstore/client";

const client = createClient({ url: process.argv[2] ?? "http://127.0.0.1:8000" });
const counted: RouterOutputs["orders"]["count"] = await client.orders.count.query(${countInput});
const order = await client.orders.add.mutate({ customerId: 9999, netAmount: "23.00", tax: 2 });
const total: string = order.totalAmount;
console.log(JSON.stringify({ count: counted.count, total }));
`;

beforeAll(async () => {
  app = await mkdtemp(join(tmpdir(), "dellstore-consumer-"));
  await mkdir(join(app, "node_modules", "@dellstore"), { recursive: true });
  // The workspace as npm links it; its dependencies resolve from the repository's node_modules.
  await symlink(join(projectRoot, "client"), join(app, "node_modules", "@dellstore", "client"));
  await writeFile(join(app, "package.json"), '{ "type": "module" }');
  await writeFile(
    join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: "NodeNext",
        moduleResolution: "NodeNext",
        target: "ES2022",
        outDir: "out",
        // The strict check without skipLibCheck is .ci/run's, on the packed tarball; this one runs the program.
        skipLibCheck: true,
        // The program reads process.argv: Node's types, from this project (the app has no node_modules of its own).
        typeRoots: [join(projectRoot, "node_modules/@types")],
        types: ["node"],
      },
      files: ["app.ts"],
    }),
  );
});
afterAll(() => rm(app, { recursive: true, force: true }));

const tsc = () => run(join(projectRoot, "node_modules/.bin/tsc"), ["-p", app]);

describe("importing @dellstore/client from another app", () => {
  it("type-checks a correct program and runs it against the server", async () => {
    await writeFile(join(app, "app.ts"), program("{ customerId: 9999 }"));
    const checked = await tsc();
    expect(checked.code, checked.stdout).toBe(0);
    const ran = await run("node", [join(app, "out/app.js"), server.url]);
    expect(ran.code, ran.stderr).toBe(0);
    expect(JSON.parse(ran.stdout)).toEqual({ count: expect.any(Number), total: "25.00" });
  });

  it("rejects a wrong input type at compile time", async () => {
    await writeFile(join(app, "app.ts"), program('{ customerId: "9999" }'));
    const checked = await tsc();
    expect(checked.code).not.toBe(0);
    expect(checked.stdout).toMatch(/app\.ts\(4,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/);
  });
});

describe("the @dellstore/client tarball", () => {
  it("carries README.md (its npm page) and the MIT LICENSE, the repository's own", async () => {
    // --ignore-scripts: the client's prepack would empty client/dist while other files use it.
    const packed = await run("npm", ["pack", "-w", "client", "--dry-run", "--json", "--ignore-scripts"]);
    expect(packed.code, packed.stderr).toBe(0);
    const [{ files }] = JSON.parse(packed.stdout) as [{ files: { path: string }[] }];
    expect(files.map((f) => f.path)).toEqual(expect.arrayContaining(["README.md", "LICENSE", "package.json"]));

    const read = (path: string) => readFile(join(projectRoot, path), "utf8");
    const license = await read("LICENSE");
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) 2026 the dellstore-orders authors\n/);
    expect(await read("client/LICENSE")).toBe(license);
    for (const manifest of ["package.json", "client/package.json"]) {
      expect(JSON.parse(await read(manifest)), manifest).toMatchObject({ license: "MIT" });
    }
    expect(await read("client/README.md")).toContain('import { createClient } from "@dellstore/client";');
  });
});
