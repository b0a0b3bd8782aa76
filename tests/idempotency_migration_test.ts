/**
 * The idempotency migration where pg_cron cannot be created (a database other than
 * cron.database_name, as on a plain PostgreSQL without the extension): it applies, and schedules
 * nothing.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { applyMigrations } from "../scripts/lib/migrate.ts";
import { databaseUrl, sqlClient } from "./support/env.ts";

Deno.test("migrations apply without pg_cron; the cleanup still works by hand", async () => {
  const admin = sqlClient();
  const name = `nocron_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await admin.unsafe(`create database ${name}`);
  const url = databaseUrl().replace(/\/[^/]+$/, `/${name}`);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const applied = await applyMigrations(url);
    assert.ok(applied.includes("20261122000200"));
    const [{ cron }] = await sql`select to_regclass('cron.job') is not null as cron`;
    assert.equal(cron, false);
    const [{ deleted }] = await sql`select public.cleanup_webhook_idempotency(100) as deleted`;
    assert.equal(Number(deleted), 0);
    const [{ stats }] = await sql`select public.webhook_idempotency_stats() as stats`;
    assert.equal(stats.total, 0);
    assert.equal(stats.cron, null);
    const [{ rls }] = await sql`
      select relrowsecurity as rls from pg_class where oid = 'public.webhook_idempotency'::regclass`;
    assert.equal(rls, true);
    const [{ anon }] = await sql`
      select has_table_privilege('anon', 'public.webhook_idempotency', 'select') as anon`;
    assert.equal(anon, false);
  } finally {
    await sql.end();
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
});
