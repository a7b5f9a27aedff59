// Throwaway TLS for the tests: a CA and a server certificate made with openssl,
// a TLS-only PostgreSQL cluster and a TLS-only Redis/Valkey on free ports.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { appendFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Valkey } from "iovalkey";
import { freePort } from "./server-process.ts";

export interface Certificates {
  dir: string;
  /** The CA that signed the servers' certificate. */
  ca: string;
  /** A CA that signed nothing here. */
  wrongCa: string;
  cert: string;
  key: string;
}

export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), "dellstore-tls-"));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const selfSignedCa = (name: string, key: string, cert: string) =>
    openssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
    );
  selfSignedCa("dellstore test CA", "ca.key", "ca.pem");
  selfSignedCa("some other CA", "wrong.key", "wrong-ca.pem");
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=localhost",
  );
  writeFileSync(at("san.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n");
  openssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "san.cnf",
  );
  return { dir, ca: at("ca.pem"), wrongCa: at("wrong-ca.pem"), cert: at("server.pem"), key: at("server.key") };
}

export interface TlsServer {
  port: number;
  stop(): Promise<void>;
}

const asRoot = process.getuid?.() === 0;
// PostgreSQL refuses to run as root: as root, run its tools as the postgres user.
const asPostgres = (command: string, args: string[]) =>
  asRoot
    ? execFileSync("runuser", ["-u", "postgres", "--", command, ...args], { stdio: "pipe" })
    : execFileSync(command, args, { stdio: "pipe" });

/** A PostgreSQL cluster that accepts only TLS connections (trust auth), on a free port. */
export async function startTlsPostgres(certs: Certificates): Promise<TlsServer> {
  const dir = mkdtempSync(join(tmpdir(), "dellstore-pgtls-"));
  const data = join(dir, "data");
  const { uid, gid } = asRoot ? postgresUser() : { uid: -1, gid: -1 };
  if (asRoot) chownSync(dir, uid, gid);
  asPostgres("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  for (const [from, to] of [
    [certs.cert, "server.crt"],
    [certs.key, "server.key"],
  ] as const) {
    copyFileSync(from, join(data, to));
    chmodSync(join(data, to), 0o600);
    if (asRoot) chownSync(join(data, to), uid, gid);
  }
  const port = await freePort();
  await appendFile(
    join(data, "postgresql.conf"),
    `\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nfsync = off\n`,
  );
  writeFileSync(
    join(data, "pg_hba.conf"),
    "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
  );
  asPostgres("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-w", "start"]);
  return {
    port,
    async stop() {
      try {
        asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"]).toString().trim());
  return { uid: id("-u"), gid: id("-g") };
}

/** A Redis (Valkey protocol) server that accepts only TLS connections, on a free port. */
export async function startTlsRedis(certs: Certificates): Promise<TlsServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    "redis-server",
    [
      "--port",
      "0",
      "--tls-port",
      String(port),
      "--tls-cert-file",
      certs.cert,
      "--tls-key-file",
      certs.key,
      "--tls-ca-cert-file",
      certs.ca,
      "--tls-auth-clients",
      "no",
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      certs.dir,
    ],
    { stdio: "ignore" },
  );
  const client = new Valkey({
    port,
    host: "127.0.0.1",
    tls: { ca: [readFileSync(certs.ca)] },
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  client.disconnect();
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
    },
  };
}
