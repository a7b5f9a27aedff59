// npm run build: compiles the server and its database layer into dist/ (what
// `npm start` runs), copies the migrations beside them, and builds the client
// workspace (@dellstore/client). Writes over dist/ without emptying it first,
// so a server running from it keeps its files.
import { spawnSync } from "node:child_process";
import { cpSync, rmSync, writeFileSync } from "node:fs";
import { scriptArgs } from "../db/script.ts";
import { bundleLivePage } from "./live/page/bundle.ts";

scriptArgs(
  "usage: npm run build\n  Compiles server/ and db/ into dist/, copies db/migrations there, and builds client/dist (@dellstore/client).",
  {},
);

const step = (command: string, args: string[]) => {
  const { status } = spawnSync(command, args, { stdio: "inherit" });
  if (status !== 0) process.exit(status ?? 1);
};

step("tsc", ["-p", "tsconfig.build.json"]);
rmSync("dist/db/migrations", { recursive: true, force: true });
cpSync("db/migrations", "dist/db/migrations", { recursive: true });
step("npm", ["run", "-s", "build", "-w", "client"]);
// The /live page's script, bundled by esbuild (served from here, so the server needs no esbuild).
writeFileSync("dist/server/live/page.js", await bundleLivePage());
