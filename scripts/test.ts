/**
 * `deno task test`: starts a real PostgreSQL (wal_level=logical) and a real Redis on loopback,
 * applies the migrations, runs `deno test` with their addresses in the environment, runs the
 * end-to-end suites again with the functions behind PgBouncer (scripts/lib/pooled_test_pass.ts),
 * and stops everything. Extra arguments go to `deno test` (e.g. a file or `--filter`).
 */
import { exitAfterCleanup, stopOnSignals, trackChild } from "./lib/cleanup.ts";
import { enableBroadcasts, runAdvisor, runPgTap } from "./lib/database_checks.ts";
import { applyMigrations } from "./lib/migrate.ts";
import { freePort } from "./lib/ports.ts";
import { runPooledPass } from "./lib/pooled_test_pass.ts";
import { startPostgres } from "./lib/postgres_server.ts";
import { startRedis } from "./lib/redis_server.ts";

// SIGINT/SIGTERM to this process stops the tests and every server and instance started for them.
stopOnSignals();
const work = await Deno.makeTempDir({ prefix: "wa-webhook-test-" });
await Deno.chmod(work, 0o755);
const pg = await startPostgres({
  dataDir: `${work}/pgdata`,
  port: freePort(),
  logFile: `${work}/postgres.log`,
  settings: { fsync: "off", full_page_writes: "off" },
});
const redis = await startRedis({ port: freePort() });
let code = 1;
try {
  await applyMigrations(pg.url);
  // The database's own surface first, on the fresh database: advisor and pgTAP matrix.
  const advisorOk = await runAdvisor(pg.url);
  const pgTapOk = await runPgTap(pg.url);
  // Broadcast from Database on: every test that counts Realtime changes then counts broadcasts.
  await enableBroadcasts(pg.url);
  const args = Deno.args.length > 0 ? Deno.args : ["tests/"];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", `--junit-path=${work}/junit.xml`, ...args],
    env: {
      TEST_DATABASE_URL: pg.url,
      TEST_REDIS_URL: redis.url,
      TEST_WORK_DIR: work,
      LOG_LEVEL: Deno.env.get("LOG_LEVEL") ?? "error",
    },
    stdin: "null",
  }).spawn();
  trackChild(child);
  code = (await child.status).code;
  const junit = await Deno.readTextFile(`${work}/junit.xml`).catch(() => "");
  const suites = /<testsuites[^>]*\btests="(\d+)"[^>]*\bfailures="(\d+)"[^>]*\berrors="(\d+)"/.exec(
    junit,
  );
  if (suites) {
    const [total, failures, errors] = suites.slice(1).map(Number);
    const failed = failures + errors;
    console.log(`tests: ${total - failed} passed, ${failed} failed`);
  }
  // The end-to-end suites once more, the functions through PgBouncer in transaction mode.
  const pooled = await runPooledPass({
    databaseUrl: pg.url,
    redisUrl: redis.url,
    work,
    args: Deno.args,
  });
  if (code === 0) code = pooled;
  if (code === 0 && !(advisorOk && pgTapOk)) code = 1;
} catch (error) {
  console.error(error);
} finally {
  await redis.stop();
  await pg.stop();
  if (code === 0) await Deno.remove(work, { recursive: true }).catch(() => {});
  else console.error(`test servers' logs kept in ${work}`);
}
await exitAfterCleanup(code);
