/**
 * The Idempotency-Key layer across function instances (runner processes sharing one database),
 * the pg_cron schedule of the cleanup, and the webhook-stats function.
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { LOCAL_JWT_SECRET } from "../supabase/functions/_shared/core/jwt.ts";
import {
  databaseUrl,
  groupRows,
  signature,
  sqlClient,
  TEST_SECRET,
  uniqueGroup,
} from "./support/env.ts";
import { type FunctionInstance, startFunctionInstance } from "./support/function_instance.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";

const FN = "whatsapp-membership-webhook";
const LEASE_SECONDS = 5;

function join(group: string) {
  return JSON.stringify({
    event: "join",
    groupJid: group,
    participant: "919963064165@s.whatsapp.net",
  });
}

async function postKeyed(url: string, body: string, key: string) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-webhook-signature": signature(body),
      "idempotency-key": key,
    },
    body,
  });
  return {
    status: response.status,
    headers: response.headers,
    bytes: new Uint8Array(await response.arrayBuffer()),
  };
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function jwt(claims: Record<string, unknown>, secret = LOCAL_JWT_SECRET) {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt()
    .setExpirationTime("5m").sign(new TextEncoder().encode(secret));
}

Deno.test("idempotency across two instances", async (t) => {
  const env = {
    SUPABASE_DB_URL: databaseUrl(),
    WEBHOOK_SECRET: TEST_SECRET,
    IDEMPOTENCY_LEASE_SECONDS: String(LEASE_SECONDS),
  };
  const instances: FunctionInstance[] = await Promise.all([
    startFunctionInstance(env),
    startFunctionInstance(env),
  ]);
  const [a, b] = instances;
  const sql = sqlClient(3);
  try {
    await t.step(
      "10 concurrent requests with one key on 2 instances → the handler runs once",
      async () => {
        const group = uniqueGroup();
        const key = crypto.randomUUID();
        const body = join(group);
        const feed = await RealtimeChangeFeed.open(sql);
        try {
          const responses = await Promise.all(
            Array.from({ length: 10 }, (_, i) => postKeyed((i % 2 ? b : a).url(FN), body, key)),
          );
          const ran = responses.filter((r) =>
            r.status === 200 && r.headers.get("idempotent-replayed") === null
          );
          const replays = responses.filter((r) => r.headers.get("idempotent-replayed") === "true");
          const busy = responses.filter((r) => r.status === 409);
          assert.equal(ran.length, 1, JSON.stringify(responses.map((r) => r.status)));
          assert.equal(ran.length + replays.length + busy.length, 10);
          for (const r of replays) assert.deepEqual(r.bytes, ran[0].bytes);
          for (const r of busy) {
            assert.equal(
              JSON.parse(new TextDecoder().decode(r.bytes)).error,
              "idempotency_key_in_progress",
            );
            assert.ok(Number(r.headers.get("retry-after")) >= 1);
          }
          assert.equal(
            JSON.parse(new TextDecoder().decode(ran[0].bytes)).results[0].outcome,
            "applied",
          );
          assert.equal((await feed.changes(group)).length, 1);
          assert.equal((await groupRows(sql, group)).length, 1);
        } finally {
          await feed.close();
        }
      },
    );

    await t.step(
      "an instance killed mid-request: 409 until its lease expires, then the next request runs",
      async () => {
        const group = uniqueGroup();
        const key = crypto.randomUUID();
        const body = join(group);
        // Hold the group's apply lock so instance A's request hangs inside the database.
        let unlock!: () => void;
        const unlocked = new Promise<void>((resolve) => (unlock = resolve));
        let locked!: () => void;
        const lockTaken = new Promise<void>((resolve) => (locked = resolve));
        const holder = sql.begin(async (tx) => {
          await tx`select pg_advisory_xact_lock(hashtextextended(${
            "whatsapp_group_members:" + group
          }, 0))`;
          locked();
          await unlocked;
        });
        await lockTaken;
        const doomed = await startFunctionInstance(env);
        instances.push(doomed);
        const hanging = postKeyed(doomed.url(FN), body, key).catch(() => undefined);
        await waitFor("the key in progress", async () => {
          const [row] = await sql`select state from public.webhook_idempotency where key = ${key}`;
          return row?.state === "in_progress" ? true : undefined;
        });
        const busy = await postKeyed(b.url(FN), body, key);
        assert.equal(busy.status, 409);
        await doomed.kill(); // the process dies holding the lease
        await hanging;
        unlock();
        await holder;
        const [row] = await sql`select state from public.webhook_idempotency where key = ${key}`;
        assert.equal(row.state, "in_progress"); // nobody completed it
        await waitFor("the lease to run out", async () => {
          const [r] =
            await sql`select locked_until <= clock_timestamp() as out from public.webhook_idempotency where key = ${key}`;
          return r.out ? true : undefined;
        });
        const next = await postKeyed(b.url(FN), body, key);
        assert.equal(next.status, 200);
        assert.equal(next.headers.get("idempotent-replayed"), null);
        const [done] =
          await sql`select state, response_status from public.webhook_idempotency where key = ${key}`;
        assert.deepEqual({ ...done }, { state: "completed", response_status: 200 });
        assert.equal((await groupRows(sql, group)).length, 1);
      },
    );

    await t.step("health shows the layer, its header names and TTL", async () => {
      const health = await (await fetch(`${a.url(FN)}/health`)).json();
      assert.equal(health.idempotency.enabled, true);
      assert.equal(health.idempotency.ttlSeconds, 86_400);
      assert.equal(health.idempotency.leaseSeconds, LEASE_SECONDS);
      assert.ok(health.idempotency.headers.includes("Idempotency-Key"));
    });

    await t.step("webhook-stats refuses non-service callers and counts correctly", async () => {
      const url = a.url("webhook-stats");
      assert.equal((await fetch(url)).status, 401);
      const badSignature = await fetch(url, {
        headers: { authorization: `Bearer ${await jwt({ role: "service_role" }, "x".repeat(40))}` },
      });
      assert.equal(badSignature.status, 401);
      await badSignature.body?.cancel();
      for (const role of ["anon", "authenticated"]) {
        const response = await fetch(url, {
          headers: { authorization: `Bearer ${await jwt({ role, sub: "u1" })}` },
        });
        assert.equal(response.status, 403);
        assert.equal((await response.json()).error, "forbidden");
      }
      const type = `stats-${crypto.randomUUID()}`;
      await sql`
        insert into public.webhook_idempotency
          (scope, key, webhook_type, fingerprint, state, lock_token, locked_until, expires_at, replay_count)
        values
          ('t', ${
        type + "-1"
      }, ${type}, repeat('a', 64), 'completed', gen_random_uuid(), now(), now() + interval '1 h', 3),
          ('t', ${
        type + "-2"
      }, ${type}, repeat('a', 64), 'completed', gen_random_uuid(), now(), now() + interval '1 h', 1),
          ('t', ${
        type + "-3"
      }, ${type}, repeat('a', 64), 'in_progress', gen_random_uuid(), now() + interval '1 min', now() + interval '1 h', 0),
          ('t', ${
        type + "-4"
      }, ${type}, repeat('a', 64), 'completed', gen_random_uuid(), now(), now() - interval '1 s', 2)`;
      try {
        const response = await fetch(url, {
          headers: { authorization: `Bearer ${await jwt({ role: "service_role" })}` },
        });
        assert.equal(response.status, 200);
        const { idempotency: stats } = await response.json();
        assert.deepEqual(stats.byType[type], {
          total: 4,
          active: 3,
          expired: 1,
          inProgress: 1,
          replays: 6,
        });
        const [all] = await sql`select count(*)::int as n from public.webhook_idempotency`;
        assert.equal(stats.total, all.n);
        assert.ok(stats.tableBytes > 0);
        assert.equal(stats.cron.schedule, "17 * * * *");
        assert.ok(stats.byType.membership?.total >= 2, JSON.stringify(stats));
        const post = await fetch(url, {
          method: "POST",
          headers: { authorization: `Bearer ${await jwt({ role: "service_role" })}` },
        });
        assert.equal(post.status, 405);
        await post.body?.cancel();
      } finally {
        await sql`delete from public.webhook_idempotency where webhook_type = ${type}`;
      }
    });
  } finally {
    await Promise.all(instances.map((i) => i.stop()));
    await sql.end();
  }
});

// pg_cron uses the direct connection: once is enough (not again in the pooled pass).
const pooledPass = Deno.env.get("TEST_POOLED_DATABASE_URL") !== undefined;

Deno.test("pg_cron: the hourly cleanup job exists and runs (cron.job_run_details)", {
  ignore: pooledPass,
}, async () => {
  const sql = sqlClient();
  const [job] =
    await sql`select jobid, schedule, command, database from cron.job where jobname = 'cleanup-webhook-idempotency'`;
  try {
    assert.ok(job, "the migration scheduled the cleanup");
    assert.equal(job.schedule, "17 * * * *");
    assert.equal(job.command, "select public.cleanup_webhook_idempotency(5000)");
    const type = `cron-${crypto.randomUUID()}`;
    await sql`
      insert into public.webhook_idempotency
        (scope, key, webhook_type, fingerprint, state, lock_token, locked_until, expires_at)
      values ('t', ${type}, ${type}, repeat('a', 64), 'completed', gen_random_uuid(), now(), now() - interval '1 s')`;
    // Run it every minute for the test, then put the hourly schedule back.
    const since = new Date();
    await sql`select cron.alter_job(${job.jobid}::bigint, schedule => '* * * * *')`;
    const run = await waitFor("a run of the cleanup job", async () => {
      const [r] = await sql`
        select status, return_message from cron.job_run_details
        where jobid = ${job.jobid} and start_time >= ${since} and status in ('succeeded', 'failed')
        order by start_time desc limit 1`;
      return r;
    }, 150_000);
    assert.equal(run.status, "succeeded", run.return_message);
    assert.equal(
      (await sql`select count(*)::int as n from public.webhook_idempotency where key = ${type}`)[0]
        .n,
      0,
    );
    const [logged] =
      await sql`select rows_deleted from public.webhook_idempotency_cleanup_runs where finished_at >= ${since} order by id desc limit 1`;
    assert.ok(Number(logged.rows_deleted) >= 1);
    // The statistics endpoint's SQL reports that run.
    const [{ stats }] = await sql`select public.webhook_idempotency_stats() as stats`;
    assert.equal(stats.cron.lastRun.status, "succeeded");
    assert.equal(stats.lastCleanup.rowsDeleted, Number(logged.rows_deleted));
  } finally {
    if (job) await sql`select cron.alter_job(${job.jobid}::bigint, schedule => '17 * * * *')`;
    await sql.end();
  }
});
