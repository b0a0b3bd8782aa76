/**
 * `deno task dev`: a complete local stack without Docker or a cloud account.
 *
 * Starts PostgreSQL (data kept under .local/), applies the migrations, and serves every function
 * at http://127.0.0.1:$PORT/functions/v1/<name>. Redis is optional: pass UPSTASH_REDIS_REST_URL
 * and UPSTASH_REDIS_REST_TOKEN to use one, or --with-redis to start redis-server and a local
 * Upstash-compatible endpoint. --with-pooler serves the functions through PgBouncer in transaction
 * mode (as Supabase's pooler), on POOLER_PORT (54329).
 */
import { exitAfterCleanup, onCleanup, stopOnSignals } from "./lib/cleanup.ts";
import { applyMigrations } from "./lib/migrate.ts";
import { startPgBouncer } from "./lib/pgbouncer_server.ts";
import { freePort } from "./lib/ports.ts";
import { startPostgres } from "./lib/postgres_server.ts";
import { startRedis } from "./lib/redis_server.ts";
import { startUpstashRestServer } from "./lib/upstash_rest_server.ts";
import { listFunctions, serveFunctions } from "./serve_functions.ts";
import { FakeWhatsAppProvider, providerEnv } from "../tests/support/fake_whatsapp_provider.ts";

/** The secret `deno task dev` uses when WEBHOOK_SECRET is not set. */
export const DEV_WEBHOOK_SECRET = "local-dev-webhook-secret";

const root = new URL("../", import.meta.url).pathname;
// As root, PostgreSQL runs as an unprivileged user that may not reach into the clone (e.g. under
// /root): keep its data where any user can traverse.
const stateDir = Deno.env.get("LOCAL_STATE_DIR") ??
  (Deno.uid() === 0 ? "/var/tmp/whatsapp-webhook-dedup" : `${root}.local`);

async function main() {
  const pgPort = Number(Deno.env.get("PG_PORT") ?? 54322);
  let databaseUrl = Deno.env.get("SUPABASE_DB_URL");
  if (!databaseUrl) {
    const pg = await startPostgres({
      dataDir: `${stateDir}/postgres`,
      port: pgPort,
      logFile: `${stateDir}/postgres.log`,
    });
    databaseUrl = pg.url;
    console.log(`PostgreSQL on ${databaseUrl} (log: ${stateDir}/postgres.log)`);
  }
  const applied = await applyMigrations(databaseUrl);
  console.log(`Migrations applied now: ${applied.length ? applied.join(", ") : "none pending"}`);
  Deno.env.set("SUPABASE_DB_URL", databaseUrl);
  if (Deno.args.includes("--with-pooler")) {
    const pooler = await startPgBouncer({
      databaseUrl,
      port: Number(Deno.env.get("POOLER_PORT") ?? 54329),
      logFile: `${stateDir}/pgbouncer.log`,
    });
    onCleanup(() => pooler.stop());
    Deno.env.set("SUPABASE_DB_URL", pooler.url);
    console.log(`PgBouncer (transaction mode) on ${pooler.url}: the functions connect through it`);
  }

  if (Deno.args.includes("--with-redis") && !Deno.env.get("UPSTASH_REDIS_REST_URL")) {
    const redis = await startRedis({ port: freePort() });
    const upstash = await startUpstashRestServer({
      redisUrl: redis.url,
      token: "local-upstash-token",
    });
    Deno.env.set("UPSTASH_REDIS_REST_URL", upstash.url);
    Deno.env.set("UPSTASH_REDIS_REST_TOKEN", upstash.token);
    console.log(`Redis on ${redis.url}, Upstash-compatible endpoint on ${upstash.url}`);
  }
  if (!Deno.env.get("WEBHOOK_SECRET") && Deno.env.get("ALLOW_UNSIGNED_WEBHOOKS") !== "true") {
    Deno.env.set("WEBHOOK_SECRET", DEV_WEBHOOK_SECRET);
    console.log("WEBHOOK_SECRET not set; using the local development secret (see README)");
  }
  const port = Number(Deno.env.get("PORT") ?? 54321);
  const base = `http://127.0.0.1:${port}/functions/v1`;
  // The README's examples sign with these; a value already in the environment wins.
  const secrets = localSecrets(base);
  for (const [name, value] of Object.entries(secrets)) {
    if (!Deno.env.get(name)) Deno.env.set(name, value);
  }
  if (!Deno.env.get("SEND_PROVIDER") && !Deno.env.get("META_ACCESS_TOKEN")) {
    // No provider configured: a fake one, so whatsapp-send-batch can be tried end to end.
    const fake = FakeWhatsAppProvider.start();
    onCleanup(() => fake.stop());
    for (const [name, value] of Object.entries(providerEnv(fake, "meta"))) {
      Deno.env.set(name, value);
    }
    console.log(
      `FAKE WhatsApp provider on ${fake.url} (Cloud API shapes): nothing is really sent. ` +
        "Set SEND_PROVIDER and its variables to use a real one.",
    );
  }
  // whatsapp-send-batch: no pg_cron + pg_net locally, so the function runs its drain schedule itself.
  if (!Deno.env.get("SEND_DRAIN_INTERVAL_MS")) Deno.env.set("SEND_DRAIN_INTERVAL_MS", "10000");
  const server = await serveFunctions({
    port,
    hostname: Deno.env.get("HOST") ?? "127.0.0.1",
  });
  // Registered last, so run first: the functions finish their work before the servers stop.
  onCleanup(() => server.shutdown());
  console.log(`\nFunctions (data under ${stateDir}; stop, then delete it to start afresh):`);
  for (const name of await functionNames()) console.log(`  ${base}/${name}`);
  console.log("Local secrets (the README's examples use them):");
  for (const name of Object.keys(secrets)) console.log(`  ${name}=${Deno.env.get(name)}`);
  console.log(`  WEBHOOK_SECRET=${Deno.env.get("WEBHOOK_SECRET") ?? ""}`);
  if (Deno.env.get("UPSTASH_REDIS_REST_TOKEN")) {
    console.log(`  UPSTASH_REDIS_REST_URL=${Deno.env.get("UPSTASH_REDIS_REST_URL")}`);
    console.log(`  UPSTASH_REDIS_REST_TOKEN=${Deno.env.get("UPSTASH_REDIS_REST_TOKEN")}`);
  }
  console.log("Access tokens: deno task jwt [user-uuid]");
}

/** The signing secrets of the local stack, as the README's examples use them. */
export function localSecrets(base: string): Record<string, string> {
  return {
    WAHA_HMAC_KEY: "waha-key",
    META_APP_SECRET: "meta-secret",
    META_VERIFY_TOKEN: "verify-me",
    TWILIO_AUTH_TOKEN: "twilio-token",
    TWILIO_WEBHOOK_URL: `${base}/whatsapp-message-webhook`,
    STANDARD_WEBHOOKS_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  };
}

async function functionNames(): Promise<string[]> {
  return (await listFunctions()).map((f) => f.name).sort();
}

// SIGINT/SIGTERM to this process (or to `deno task dev`, which passes it on) stops everything
// started here: PostgreSQL, Redis and its endpoint register themselves when they start.
stopOnSignals();
try {
  await main();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  await exitAfterCleanup(1);
}
