import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import { ScheduledSequencer } from "./test/setup/sequencer.ts";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/setup/services.ts"],
    setupFiles: ["test/setup/exclusive.ts"],
    // Each file works in its own database and key prefix, so files run in parallel. Much of a file's
    // time is spent waiting on servers, child processes and timers, so two files per core keep the
    // cores busy (Vitest's default, one less than the cores, ran them one at a time on two); at most
    // four, as measured, which also bounds PostgreSQL connections (each file's pools, on a server
    // allowing 100). The machine-loading files take turns: test/setup/schedule.ts.
    pool: "forks",
    maxWorkers: Math.min(4, 2 * availableParallelism()),
    // A worker runs file after file in one process, importing the server's modules (Fastify, tRPC,
    // postgres.js, OpenTelemetry…) once instead of once per file: isolating each file cost a second of
    // CPU per file. Nothing here keeps state in a module between files (databases and key prefixes are
    // random per file; mocks and fake timers are restored by the file that set them).
    isolate: false,
    sequence: { sequencer: ScheduledSequencer },
    // Beside three other files on two cores a test runs at about half speed: 30 s (the timeout when
    // files ran one at a time) left `npm run typecheck -- --help` (a whole type-check first) and TLS
    // seeding at 25 s of it.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default", "json"],
    outputFile: { json: ".vitest/results.json" },
  },
});
