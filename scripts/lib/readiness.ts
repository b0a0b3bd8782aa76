/**
 * Waits until a local server does what its clients need, not merely until its port is open:
 * PostgreSQL opens its port while it is still starting up (or recovering) and refuses logins with
 * "the database system is starting up" (57P03); Redis may answer `-LOADING` before it serves.
 */
import postgres from "postgres";

/** Options of the waits. */
export interface ReadinessOptions {
  /** Give up after this long (ms). */
  timeoutMs: number;
  /** True once the server process has exited: no point waiting any longer. */
  exited?: () => boolean;
  /** The server's name in error messages. */
  name?: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Resolves once a login to `url` succeeds and runs `select 1`; throws past the timeout. */
export async function waitForPostgresLogin(url: string, options: ReadinessOptions): Promise<void> {
  const name = options.name ?? "PostgreSQL";
  const deadline = Date.now() + options.timeoutMs;
  let last: unknown = "not tried";
  while (Date.now() < deadline) {
    if (options.exited?.()) throw new Error(`${name} exited during start-up`);
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`select 1`;
      return;
    } catch (error) {
      last = error;
    } finally {
      await sql.end({ timeout: 1 }).catch(() => {});
    }
    await sleep(50);
  }
  throw new Error(
    `${name} did not accept a login within ${options.timeoutMs} ms (last: ${describe(last)})`,
  );
}

/** One `PING` on a fresh connection; true when the answer is `+PONG`. */
export async function redisPing(port: number, hostname = "127.0.0.1"): Promise<boolean> {
  const conn = await Deno.connect({ hostname, port });
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch { /* closed already */ }
  }, 1000);
  try {
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buffer = new Uint8Array(64);
    const n = await conn.read(buffer);
    return n !== null && new TextDecoder().decode(buffer.subarray(0, n)).startsWith("+PONG");
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

/** Resolves once Redis on `port` answers PING with PONG; throws past the timeout. */
export async function waitForRedisPing(port: number, options: ReadinessOptions): Promise<void> {
  const name = options.name ?? "redis-server";
  const deadline = Date.now() + options.timeoutMs;
  let last: unknown = "not tried";
  while (Date.now() < deadline) {
    if (options.exited?.()) throw new Error(`${name} exited during start-up`);
    try {
      if (await redisPing(port)) return;
      last = "no PONG";
    } catch (error) {
      last = error;
    }
    await sleep(50);
  }
  throw new Error(
    `${name} did not answer PING on port ${port} within ${options.timeoutMs} ms ` +
      `(last: ${describe(last)})`,
  );
}
