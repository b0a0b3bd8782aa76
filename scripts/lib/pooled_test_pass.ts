/**
 * The second pass of `deno task test`: the end-to-end suites of every function once more, with
 * the functions connecting through a real PgBouncer in transaction mode (as deployed behind
 * Supabase's pooler). Tests keep their direct connection for assertions, pg_cron and the
 * replication feed, as on Supabase; function code gets `TEST_POOLED_DATABASE_URL`.
 */
import { startPgBouncer } from "./pgbouncer_server.ts";
import { freePort } from "./ports.ts";

/** The suites that run the functions end to end (runner processes or the full handler). */
export const POOLED_SUITES = [
  "tests/e2e_test.ts",
  "tests/gateways_e2e_test.ts",
  "tests/idempotency_e2e_test.ts",
  "tests/message_e2e_test.ts",
  "tests/send_batch_test.ts",
  "tests/send_batch_process_test.ts",
  "tests/send_batch_schedule_test.ts",
];

/**
 * The `deno test` arguments of the pooled pass for the first pass's arguments: the same flags,
 * with only the end-to-end suites among the files (all of them for a directory or no file); empty
 * when no end-to-end suite was asked for.
 */
export function pooledPassArgs(args: readonly string[]): string[] {
  const flags: string[] = [];
  const files: string[] = [];
  let sawPath = false;
  for (const arg of args) {
    if (arg.endsWith(".ts")) {
      sawPath = true;
      if (POOLED_SUITES.some((suite) => arg.replace(/^\.\//, "").endsWith(suite))) files.push(arg);
    } else if (/^(\.\/)?tests\/?$/.test(arg)) {
      sawPath = true;
      files.push(...POOLED_SUITES);
    } else {
      flags.push(arg);
    }
  }
  if (!sawPath) files.push(...POOLED_SUITES);
  return files.length === 0 ? [] : [...flags, ...files];
}

/** Options of {@link runPooledPass}. */
export interface PooledPassOptions {
  /** The test PostgreSQL (migrations applied). */
  databaseUrl: string;
  redisUrl: string;
  /** The run's work directory (PgBouncer's log goes there). */
  work: string;
  /** The arguments `deno task test` was given. */
  args: readonly string[];
}

/** Starts PgBouncer, runs the pass, stops PgBouncer; returns `deno test`'s exit code (0 if skipped). */
export async function runPooledPass(options: PooledPassOptions): Promise<number> {
  const args = pooledPassArgs(options.args);
  if (args.length === 0) return 0;
  const bouncer = await startPgBouncer({
    databaseUrl: options.databaseUrl,
    port: freePort(),
    logFile: `${options.work}/pgbouncer.log`,
  });
  let child: Deno.ChildProcess | undefined;
  // A signal to this process alone stops the pass's own servers too.
  const stop = () => {
    try {
      child?.kill("SIGTERM");
    } catch { /* already gone */ }
    void bouncer.stop();
  };
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  try {
    console.log(`end-to-end suites again, the functions through PgBouncer (transaction mode):`);
    child = new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", ...args],
      env: {
        TEST_DATABASE_URL: options.databaseUrl,
        TEST_POOLED_DATABASE_URL: bouncer.url,
        TEST_REDIS_URL: options.redisUrl,
        TEST_WORK_DIR: options.work,
        LOG_LEVEL: Deno.env.get("LOG_LEVEL") ?? "error",
      },
      stdin: "null",
    }).spawn();
    return (await child.status).code;
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
    await bouncer.stop();
  }
}
