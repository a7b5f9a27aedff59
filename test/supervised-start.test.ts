// Under a supervisor (pm2, supervisord, a pidfile script) the pid it knows is
// npm's: SIGTERM to that pid alone must reach the server, which drains and
// stops, and npm exits with it; no process of the group may be left behind.
import { once } from "node:events";
import { expect, it } from "vitest";
import { useTestDatabase } from "./support/database.ts";
import { startServerProcess } from "./support/server-process.ts";

const db = useTestDatabase("seeded");

/** Whether any process of the group led by `pid` is alive. */
const groupAlive = (pid: number) => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
};

it("stops the server when SIGTERM reaches `npm start`'s pid only", async () => {
  const server = await startServerProcess({ DATABASE_URL: db.url });
  const pid = server.child.pid as number;
  try {
    expect((await fetch(`${server.url}/count`)).status).toBe(200);
    const exited = once(server.child, "exit");
    process.kill(pid, "SIGTERM"); // npm's pid, not its process group
    await exited;
    // npm waits for its child: once npm has exited, the server has too.
    expect(groupAlive(pid)).toBe(false);
    expect(server.output()).toContain('"msg":"stopped"');
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  } finally {
    if (groupAlive(pid)) process.kill(-pid, "SIGKILL");
  }
});
