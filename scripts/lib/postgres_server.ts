/**
 * Starts a throw-away or persistent local PostgreSQL server on loopback, without Docker.
 *
 * Uses the server binaries found in `PG_BIN`, `/usr/lib/postgresql/<version>/bin` or
 * `pg_config --bindir`. PostgreSQL refuses to run as root, so under root the server runs as the
 * `postgres` user (or `nobody`) through `setpriv`. A start resolves once the server accepts a
 * login (not merely once its port is open); a started server is stopped by the command's cleanup
 * (`cleanup.ts`) if nothing else stops it.
 */
import { onCleanup } from "./cleanup.ts";
import { waitForPostgresLogin } from "./readiness.ts";

/** A running local PostgreSQL server. */
export interface PostgresServer {
  /** Connection string for the `postgres` superuser. */
  url: string;
  port: number;
  dataDir: string;
  /** Stops the server (fast shutdown). */
  stop(): Promise<void>;
  /** Starts it again after {@link stop}, on the same port and data. */
  start(): Promise<void>;
}

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Data directory; created and initialised when empty. */
  dataDir: string;
  port: number;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
  /** Where the server log goes (default `<dataDir>/../postgres.log`). */
  logFile?: string;
}

/** Finds the directory holding `initdb` and `postgres`. */
export async function findPostgresBin(): Promise<string> {
  const candidates: string[] = [];
  const fromEnv = Deno.env.get("PG_BIN");
  if (fromEnv) candidates.push(fromEnv);
  try {
    const versions: number[] = [];
    for await (const entry of Deno.readDir("/usr/lib/postgresql")) {
      if (/^[0-9]+$/.test(entry.name)) versions.push(Number(entry.name));
    }
    versions.sort((a, b) => b - a).forEach((v) => candidates.push(`/usr/lib/postgresql/${v}/bin`));
  } catch { /* not a Debian layout */ }
  try {
    const out = await new Deno.Command("pg_config", { args: ["--bindir"] }).output();
    if (out.success) candidates.push(new TextDecoder().decode(out.stdout).trim());
  } catch { /* no pg_config */ }
  for (const dir of candidates) {
    try {
      await Deno.stat(`${dir}/postgres`);
      await Deno.stat(`${dir}/initdb`);
      return dir;
    } catch { /* try the next one */ }
  }
  throw new Error(
    "PostgreSQL server binaries not found. Install them (Debian: apt-get install postgresql-15) " +
      "or set PG_BIN to the directory holding initdb and postgres.",
  );
}

/** Whether the pg_cron library is installed next to the server binaries. */
async function hasPgCron(bin: string): Promise<boolean> {
  const out = await new Deno.Command(`${bin}/pg_config`, { args: ["--pkglibdir"] }).output()
    .catch(() => null);
  const libDir = out?.success ? new TextDecoder().decode(out.stdout).trim() : `${bin}/../lib`;
  return await Deno.stat(`${libDir}/pg_cron.so`).then(() => true, () => false);
}

/** Under root, the user servers that refuse root run as (`postgres`, else `nobody`). */
export async function unprivilegedUser(): Promise<
  { uid: number; gid: number; name: string } | undefined
> {
  if (Deno.uid() !== 0) return undefined;
  for (const name of ["postgres", "nobody"]) {
    const out = await new Deno.Command("id", { args: ["-u", name] }).output().catch(() => null);
    if (!out?.success) continue;
    const gidOut = await new Deno.Command("id", { args: ["-g", name] }).output();
    return {
      name,
      uid: Number(new TextDecoder().decode(out.stdout).trim()),
      gid: Number(new TextDecoder().decode(gidOut.stdout).trim()),
    };
  }
  throw new Error(
    "running as root and no unprivileged user (postgres or nobody) to run PostgreSQL",
  );
}

/** The command line that runs `command` as `user` (through `setpriv`), or as is. */
export function asUser(
  user: { uid: number; gid: number } | undefined,
  command: string,
  args: string[],
): [string, string[]] {
  if (!user) return [command, args];
  return [
    "setpriv",
    [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--", command, ...args],
  ];
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await Deno.chown(path, uid, gid);
  for await (const entry of Deno.readDir(path)) {
    const child = `${path}/${entry.name}`;
    if (entry.isDirectory) await chownTree(child, uid, gid);
    else await Deno.chown(child, uid, gid);
  }
}

/** Initialises (when needed) and starts a PostgreSQL server. */
export async function startPostgres(options: StartPostgresOptions): Promise<PostgresServer> {
  const bin = await findPostgresBin();
  const user = await unprivilegedUser();
  const parent = options.dataDir.replace(/\/[^/]+\/?$/, "") || "/";
  await Deno.mkdir(parent, { recursive: true });
  await Deno.mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const logFile = options.logFile ?? `${options.dataDir}.log`;
  if (user) {
    await chownTree(options.dataDir, user.uid, user.gid);
    await Deno.writeTextFile(logFile, "", { append: true });
    await Deno.chown(logFile, user.uid, user.gid);
  }
  const initialised = await Deno.stat(`${options.dataDir}/PG_VERSION`).then(
    () => true,
    () => false,
  );
  if (!initialised) {
    const [cmd, args] = asUser(user, `${bin}/initdb`, [
      "-D",
      options.dataDir,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
    ]);
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    if (!out.success) {
      throw new Error(`initdb failed: ${new TextDecoder().decode(out.stderr)}`);
    }
  }
  const settings: Record<string, string | number> = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: "",
    wal_level: "logical",
    max_replication_slots: 20,
    max_wal_senders: 10,
    max_connections: 200,
    // The real pg_cron, as on Supabase, when installed (Debian: postgresql-15-cron); its jobs run in
    // the database the migrations go to, over loopback TCP.
    ...(await hasPgCron(bin)
      ? {
        shared_preload_libraries: "pg_cron",
        "cron.database_name": "postgres",
        "cron.host": "127.0.0.1",
      }
      : {}),
    ...options.settings,
  };
  let child: Deno.ChildProcess | undefined;
  let exited = true;

  const server: PostgresServer = {
    url: `postgres://postgres:postgres@127.0.0.1:${options.port}/postgres`,
    port: options.port,
    dataDir: options.dataDir,
    async start() {
      if (!exited) return;
      const args = ["-D", options.dataDir, "-p", String(options.port)];
      for (const [name, value] of Object.entries(settings)) args.push("-c", `${name}=${value}`);
      const [cmd, cmdArgs] = asUser(user, `${bin}/postgres`, args);
      // One file handle per stream: a writable stream takes one pipe at a time, and a stream
      // nobody drains fills its pipe and blocks the server as soon as it logs 64 KiB.
      const open = () => Deno.open(logFile, { append: true, create: true, write: true });
      const [outLog, errLog] = [await open(), await open()];
      child = new Deno.Command(cmd, {
        args: cmdArgs,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      exited = false;
      const current = child;
      current.stdout.pipeTo(outLog.writable).catch(() => {});
      current.stderr.pipeTo(errLog.writable).catch(() => {});
      const forget = onCleanup(() => server.stop());
      current.status.then(() => {
        if (child === current) exited = true;
        forget();
      });
      try {
        await waitForPostgresLogin(server.url, { timeoutMs: 30_000, exited: () => exited });
      } catch (error) {
        await server.stop();
        throw error;
      }
    },
    async stop() {
      if (!child || exited) return;
      const current = child;
      try {
        current.kill("SIGINT");
      } catch { /* already gone */ }
      await current.status;
      exited = true;
    },
  };
  await server.start();
  return server;
}
