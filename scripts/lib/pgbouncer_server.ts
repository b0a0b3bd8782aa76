/**
 * Starts a local PgBouncer (Debian's `pgbouncer`) in transaction mode in front of a PostgreSQL
 * server, as Supabase's dedicated pooler runs: one server connection per transaction, no session
 * state, no prepared statements, only the startup parameters PgBouncer tracks.
 *
 * PgBouncer refuses to run as root, so under root it runs as the user PostgreSQL runs as.
 */
import postgres from "postgres";
import { asUser, unprivilegedUser } from "./postgres_server.ts";

/** A running PgBouncer. */
export interface PgBouncerServer {
  /** The upstream connection string with PgBouncer's host and port instead. */
  url: string;
  port: number;
  /** Stops PgBouncer (immediate shutdown) and removes its temporary configuration directory. */
  stop(): Promise<void>;
}

/** Options of {@link startPgBouncer}. */
export interface StartPgBouncerOptions {
  /** The PostgreSQL server's `postgres://user:password@127.0.0.1:port/db` URL. */
  databaseUrl: string;
  port: number;
  /** Server connections per database and user (default 20). */
  poolSize?: number;
  /** Where PgBouncer's log goes (default: its temporary configuration directory). */
  logFile?: string;
}

/** The binary: `PGBOUNCER`, else Debian's path, else `pgbouncer` on the PATH. */
async function findPgBouncer(): Promise<string> {
  const fromEnv = Deno.env.get("PGBOUNCER");
  if (fromEnv) return fromEnv;
  return await Deno.stat("/usr/sbin/pgbouncer").then(
    () => "/usr/sbin/pgbouncer",
    () => "pgbouncer",
  );
}

/** `"name"` as PgBouncer's auth file quotes it. */
function quoted(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

/** The configuration: every database name goes to the upstream server, transaction pooling. */
export function pgBouncerConfig(
  upstream: URL,
  options: { port: number; poolSize: number; authFile: string },
): string {
  // PgBouncer checks the password the URL carries; a URL without one logs in on trust.
  return [
    "[databases]",
    `* = host=${upstream.hostname} port=${upstream.port || 5432}`,
    "",
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${options.port}`,
    "unix_socket_dir =",
    "pool_mode = transaction",
    `auth_type = ${upstream.password ? "scram-sha-256" : "trust"}`,
    `auth_file = ${options.authFile}`,
    `default_pool_size = ${options.poolSize}`,
    "max_client_conn = 1000",
    // Unknown startup parameters are refused, as Supavisor's transaction mode refuses them.
    "ignore_startup_parameters =",
    "server_login_retry = 1",
    "",
  ].join("\n");
}

/** Waits until PgBouncer accepts a login and runs a statement through to the server. */
async function waitForLogin(url: string, timeoutMs: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (exited()) throw new Error("PgBouncer exited during start-up");
    const sql = postgres(url, { max: 1, connect_timeout: 1, onnotice: () => {} });
    try {
      await sql.unsafe("select 1");
      return;
    } catch (error) {
      last = error;
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await sql.end({ timeout: 1 }).catch(() => {});
    }
  }
  throw new Error(`PgBouncer did not accept a login within ${timeoutMs} ms`, { cause: last });
}

/** Writes a configuration for `databaseUrl`'s user and starts PgBouncer on `port`. */
export async function startPgBouncer(options: StartPgBouncerOptions): Promise<PgBouncerServer> {
  const bin = await findPgBouncer();
  const user = await unprivilegedUser();
  const upstream = new URL(options.databaseUrl);
  const dir = await Deno.makeTempDir({ prefix: "wa-pgbouncer-" });
  const authFile = `${dir}/userlist.txt`;
  const configFile = `${dir}/pgbouncer.ini`;
  const logFile = options.logFile ?? `${dir}/pgbouncer.log`;
  const login = decodeURIComponent(upstream.username || "postgres");
  await Deno.writeTextFile(
    authFile,
    `${quoted(login)} ${quoted(decodeURIComponent(upstream.password))}\n`,
  );
  await Deno.writeTextFile(
    configFile,
    pgBouncerConfig(upstream, { port: options.port, poolSize: options.poolSize ?? 20, authFile }),
  );
  if (user) {
    for (const path of [dir, authFile, configFile]) {
      await Deno.chown(path, user.uid, user.gid);
    }
  }
  const [cmd, args] = asUser(user, bin, [configFile]);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .spawn();
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error("pgbouncer not found. Install it (Debian: apt-get install pgbouncer).", {
      cause: error,
    });
  }
  // One file handle per stream, each drained, so that a chatty log never blocks PgBouncer.
  const open = () => Deno.open(logFile, { append: true, create: true, write: true });
  const [outLog, errLog] = [await open(), await open()];
  child.stdout.pipeTo(outLog.writable).catch(() => {});
  child.stderr.pipeTo(errLog.writable).catch(() => {});
  let exited = false;
  child.status.then(() => (exited = true));

  const url = new URL(options.databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(options.port);
  const server: PgBouncerServer = {
    url: url.href,
    port: options.port,
    async stop() {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        await child.status;
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await waitForLogin(server.url, 30_000, () => exited);
  } catch (error) {
    const log = await Deno.readTextFile(logFile).catch(() => "");
    await server.stop();
    throw new Error(`${(error as Error).message}\n${log.slice(-2000)}`, { cause: error });
  }
  return server;
}
