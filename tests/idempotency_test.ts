/**
 * The Idempotency-Key layer in-process, through the membership webhook, against the real
 * database: replays, mismatches, invalid keys, failures, scopes, expiry, cleanup, store outage.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { parseIdempotencyConfig } from "../supabase/functions/_shared/core/idempotency/config.ts";
import { createIdempotencyLayer } from "../supabase/functions/_shared/core/idempotency/layer.ts";
import { createMembershipWebhookFromConfig } from "../supabase/functions/whatsapp-membership-webhook/handler.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { startUpstashRestServer } from "../scripts/lib/upstash_rest_server.ts";
import {
  databaseUrl,
  groupRows,
  redisUrl,
  signature,
  sqlClient,
  TEST_SECRET,
  uniqueGroup,
} from "./support/env.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";
import { SECRETS, signedHeaders } from "./support/signing.ts";
import { failGroup, healGroup, installFailureTrigger } from "./support/failure_trigger.ts";

const URL_ = "http://127.0.0.1/whatsapp-membership-webhook";

function build(env: Record<string, string> = {}) {
  const all = {
    SUPABASE_DB_URL: databaseUrl(),
    WEBHOOK_SECRET: TEST_SECRET,
    STANDARD_WEBHOOKS_SECRET: SECRETS.STANDARD_WEBHOOKS_SECRET,
    ...env,
  };
  return createMembershipWebhookFromConfig(
    parseConfig(all),
    silentLogger,
    parseIdempotencyConfig(all),
  );
}

function join(group: string) {
  return JSON.stringify({
    event: "join",
    groupJid: group,
    participant: "919963064165@s.whatsapp.net",
  });
}

function post(body: string, headers: Record<string, string>) {
  return new Request(URL_, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-webhook-signature": signature(body),
      ...headers,
    },
    body,
  });
}

async function send(handler: (r: Request) => Promise<Response>, request: Request) {
  const response = await handler(request);
  const bytes = new Uint8Array(await response.arrayBuffer());
  return {
    status: response.status,
    headers: response.headers,
    bytes,
    json: JSON.parse(new TextDecoder().decode(bytes)),
  };
}

async function record(sql: postgres.Sql, key: string) {
  return [...await sql`select * from public.webhook_idempotency where key = ${key}`];
}

/** Every row change in the database (any table but the idempotency table), from a raw slot. */
async function openWriteCounter(sql: postgres.Sql) {
  const slot = `idem_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  await sql`select pg_create_logical_replication_slot(${slot}, 'test_decoding')`;
  return {
    async writes(): Promise<string[]> {
      const rows = await sql<{ data: string }[]>`
        select data from pg_logical_slot_get_changes(${slot}, null, null, 'skip-empty-xacts', '1')`;
      return rows.map((r) => r.data).filter((d) =>
        d.startsWith("table ") && !d.startsWith("table public.webhook_idempotency")
      );
    },
    close: () => sql`select pg_drop_replication_slot(${slot})`,
  };
}

Deno.test("first request then retry: byte-identical replay, header set, zero writes, zero Realtime events", async () => {
  const { handler, close } = build({ IDEMPOTENCY_MEMORY_MAX_KEYS: "0" });
  const sql = sqlClient();
  const group = uniqueGroup();
  const key = crypto.randomUUID();
  try {
    const first = await send(handler, post(join(group), { "idempotency-key": key }));
    assert.equal(first.status, 200);
    assert.equal(first.json.results[0].outcome, "applied");
    assert.equal(first.headers.get("idempotent-replayed"), null);
    const [stored] = await record(sql, key);
    assert.equal(stored.state, "completed");
    assert.equal(stored.response_status, 200);
    assert.equal(stored.webhook_type, "membership");
    assert.equal(stored.scope, "whatsapp-membership-webhook:hmac-sha256");
    assert.match(stored.fingerprint, /^[0-9a-f]{64}$/);

    const feed = await RealtimeChangeFeed.open(sql);
    const counter = await openWriteCounter(sql);
    try {
      const retry = await send(handler, post(join(group), { "idempotency-key": `"${key}"` }));
      assert.equal(retry.status, 200);
      assert.equal(retry.headers.get("idempotent-replayed"), "true");
      assert.equal(retry.headers.get("content-type"), first.headers.get("content-type"));
      assert.deepEqual(retry.bytes, first.bytes);
      assert.deepEqual(await feed.changes(), []);
      assert.deepEqual(await counter.writes(), []);
      assert.equal((await record(sql, key))[0].replay_count, 1);
    } finally {
      await feed.close();
      await counter.close();
    }
    assert.equal((await groupRows(sql, group)).length, 1);
  } finally {
    await close();
    await sql.end();
  }
});

Deno.test("a replay from the per-instance cache also runs nothing (X-Idempotency-Key)", async () => {
  const { handler, close } = build();
  const sql = sqlClient();
  const group = uniqueGroup();
  const key = `order-${crypto.randomUUID()}`;
  try {
    const first = await send(handler, post(join(group), { "x-idempotency-key": key }));
    const counter = await openWriteCounter(sql);
    try {
      const retry = await send(handler, post(join(group), { "x-idempotency-key": key }));
      assert.equal(retry.headers.get("idempotent-replayed"), "true");
      assert.deepEqual(retry.bytes, first.bytes);
      assert.deepEqual(await counter.writes(), []);
      // Served by the Map: the table did not even count it.
      assert.equal((await record(sql, key))[0].replay_count, 0);
    } finally {
      await counter.close();
    }
    const health = await (await handler(new Request(`${URL_}/health`))).json();
    assert.equal(health.idempotency.enabled, true);
    assert.equal(health.idempotency.ttlSeconds, 86_400);
    assert.deepEqual(health.idempotency.headers.slice(0, 2), [
      "Idempotency-Key",
      "X-Idempotency-Key",
    ]);
    assert.equal(health.idempotency.memory.hits, 1);
  } finally {
    await close();
    await sql.end();
  }
});

Deno.test("same key, different payload → 422 idempotency_key_reused, nothing run", async () => {
  const { handler, close } = build({ IDEMPOTENCY_MEMORY_MAX_KEYS: "0" });
  const sql = sqlClient();
  const [g1, g2] = [uniqueGroup(), uniqueGroup()];
  const key = crypto.randomUUID();
  try {
    assert.equal((await send(handler, post(join(g1), { "idempotency-key": key }))).status, 200);
    const reused = await send(handler, post(join(g2), { "idempotency-key": key }));
    assert.equal(reused.status, 422);
    assert.equal(reused.json.error, "idempotency_key_reused");
    assert.deepEqual(await groupRows(sql, g2), []);
  } finally {
    await close();
    await sql.end();
  }
});

Deno.test("invalid keys (space, ';', 256 chars, empty) → 400 and nothing stored or written", async () => {
  const { handler, close } = build();
  const sql = sqlClient();
  const group = uniqueGroup();
  try {
    const before = (await sql`select count(*)::int as n from public.webhook_idempotency`)[0].n;
    for (const bad of ["a b", "a;b", "k".repeat(256), ""]) {
      const response = await send(handler, post(join(group), { "idempotency-key": bad }));
      assert.equal(response.status, 400, JSON.stringify(bad));
      assert.equal(response.json.error, "invalid_idempotency_key");
    }
    assert.equal(
      (await sql`select count(*)::int as n from public.webhook_idempotency`)[0].n,
      before,
    );
    assert.deepEqual(await groupRows(sql, group), []);
    // A refused signature is answered 401 before the key is looked at, and never stored.
    const body = join(group);
    const unsigned = await send(
      handler,
      new Request(URL_, {
        method: "POST",
        headers: {
          "x-webhook-signature": signature(body, "wrong-secret-of-16+"),
          "idempotency-key": "k1",
        },
        body,
      }),
    );
    assert.equal(unsigned.status, 401);
    assert.equal(
      (await sql`select count(*)::int as n from public.webhook_idempotency`)[0].n,
      before,
    );
  } finally {
    await close();
    await sql.end();
  }
});

Deno.test("validation errors (400) are not stored: the corrected request with the key runs", async () => {
  const { handler, close } = build();
  const sql = sqlClient();
  const group = uniqueGroup();
  const key = crypto.randomUUID();
  try {
    const bad = await send(handler, post('{"event":"join"', { "idempotency-key": key }));
    assert.equal(bad.status, 400);
    assert.deepEqual(await record(sql, key), []);
    const good = await send(handler, post(join(group), { "idempotency-key": key }));
    assert.equal(good.status, 200);
    assert.equal(good.json.results[0].outcome, "applied");
  } finally {
    await close();
    await sql.end();
  }
});

Deno.test("the first attempt answered 503 → the record is deleted and the retry runs", async () => {
  const { handler, close } = build();
  const sql = sqlClient();
  const group = uniqueGroup();
  const key = crypto.randomUUID();
  await installFailureTrigger(sql);
  try {
    await failGroup(sql, group);
    const failed = await send(handler, post(join(group), { "idempotency-key": key }));
    assert.equal(failed.status, 503);
    assert.deepEqual(await record(sql, key), []);
    await healGroup(sql, group);
    const retry = await send(handler, post(join(group), { "idempotency-key": key }));
    assert.equal(retry.status, 200);
    assert.equal(retry.headers.get("idempotent-replayed"), null);
    assert.equal(retry.json.results[0].outcome, "applied");
  } finally {
    await healGroup(sql, group);
    await close();
    await sql.end();
  }
});

Deno.test("a different caller's same key is not replayed; Standard Webhooks webhook-id is a key", async () => {
  const { handler, close } = build({ IDEMPOTENCY_MEMORY_MAX_KEYS: "0" });
  const sql = sqlClient();
  const group = uniqueGroup();
  const key = crypto.randomUUID();
  try {
    const body = join(group);
    const a = await send(handler, post(body, { "idempotency-key": key }));
    assert.equal(a.status, 200);
    // Same key and body, but authenticated with the bearer token: another caller, another key.
    const b = await send(
      handler,
      new Request(URL_, {
        method: "POST",
        headers: { authorization: `Bearer ${TEST_SECRET}`, "idempotency-key": key },
        body,
      }),
    );
    assert.equal(b.status, 200);
    assert.equal(b.headers.get("idempotent-replayed"), null);
    assert.ok(["duplicate", "unchanged"].includes(b.json.results[0].outcome)); // the handler ran
    const scopes = (await record(sql, key)).map((r) => r.scope).sort();
    assert.deepEqual(scopes, [
      "whatsapp-membership-webhook:bearer",
      "whatsapp-membership-webhook:hmac-sha256",
    ]);

    // Standard Webhooks: the signed webhook-id is the key; the same delivery again is a replay.
    const other = join(uniqueGroup());
    const headers = await signedHeaders("standard", other);
    const first = await send(handler, new Request(URL_, { method: "POST", headers, body: other }));
    const again = await send(handler, new Request(URL_, { method: "POST", headers, body: other }));
    assert.equal(first.status, 200);
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    assert.deepEqual(again.bytes, first.bytes);
    assert.equal(
      (await record(sql, headers["webhook-id"]))[0].scope,
      "whatsapp-membership-webhook:standard-webhooks",
    );
  } finally {
    await close();
    await sql.end();
  }
});

Deno.test("expiry → the key runs again; the cleanup deletes only expired rows", async () => {
  const { handler, close } = build({ IDEMPOTENCY_MEMORY_MAX_KEYS: "0" });
  const sql = sqlClient();
  const group = uniqueGroup();
  const key = crypto.randomUUID();
  try {
    assert.equal((await send(handler, post(join(group), { "idempotency-key": key }))).status, 200);
    await sql`update public.webhook_idempotency set expires_at = now() - interval '1 second' where key = ${key}`;
    const again = await send(handler, post(join(group), { "idempotency-key": key }));
    assert.equal(again.status, 200);
    assert.equal(again.headers.get("idempotent-replayed"), null);
    assert.ok(["duplicate", "unchanged"].includes(again.json.results[0].outcome)); // the handler ran

    // Cleanup: 7 expired rows of a test type, 3 live ones.
    const type = `cleanup-${crypto.randomUUID()}`;
    await sql`
      insert into public.webhook_idempotency
        (scope, key, webhook_type, fingerprint, state, lock_token, locked_until, expires_at)
      select 'test', ${type} || '-' || i, ${type}, repeat('a', 64), 'completed', gen_random_uuid(),
        now(), case when i <= 7 then now() - interval '1 minute' else now() + interval '1 hour' end
      from generate_series(1, 10) i`;
    // Other tests' rows may be expired too; count only ours among the deleted ones.
    const [{ deleted }] = await sql`select public.cleanup_webhook_idempotency(2) as deleted`;
    assert.ok(Number(deleted) >= 7);
    const left =
      await sql`select key from public.webhook_idempotency where webhook_type = ${type} order by key`;
    assert.deepEqual(left.map((r) => r.key), [`${type}-10`, `${type}-8`, `${type}-9`]);
    const [{ n }] = await sql`
      select count(*)::int as n from public.webhook_idempotency where expires_at <= now()`;
    assert.equal(n, 0);

    // Each run is recorded with its count, for the statistics endpoint.
    const [run] = await sql`
      select rows_deleted from public.webhook_idempotency_cleanup_runs order by id desc limit 1`;
    assert.equal(Number(run.rows_deleted), Number(deleted));
  } finally {
    await close();
    await sql.end();
  }
});

Deno.test("store outage → 503 idempotency_unavailable with Retry-After, the handler does not run", async () => {
  const dead = `postgres://postgres:postgres@127.0.0.1:${freePort()}/postgres`;
  const all = {
    SUPABASE_DB_URL: databaseUrl(),
    WEBHOOK_SECRET: TEST_SECRET,
    IDEMPOTENCY_TIMEOUT_MS: "1000",
  };
  // The membership database works; only the idempotency store points at a closed port.
  const built = createMembershipWebhookFromConfig(parseConfig(all), silentLogger);
  const layer = createIdempotencyLayer(parseIdempotencyConfig(all), {
    databaseUrl: dead,
    logger: silentLogger,
  });
  const sql = sqlClient();
  const group = uniqueGroup();
  try {
    // Wrap the built handler: the layer in front of the whole function behaves as the wired one.
    const handler = (request: Request) =>
      request.headers.has("idempotency-key")
        ? (async () => {
          const body = new Uint8Array(await request.clone().arrayBuffer());
          return layer.handle(
            {
              functionName: "whatsapp-membership-webhook",
              caller: "hmac-sha256",
              webhookType: "membership",
              request,
              rawBody: body,
            },
            () => built.handler(request),
          );
        })()
        : built.handler(request);
    const response = await send(
      handler,
      post(join(group), { "idempotency-key": crypto.randomUUID() }),
    );
    assert.equal(response.status, 503);
    assert.equal(response.json.error, "idempotency_unavailable");
    assert.equal(response.headers.get("retry-after"), "5");
    assert.deepEqual(await groupRows(sql, group), []);
  } finally {
    await layer.close();
    await built.close();
    await sql.end();
  }
});

Deno.test("IDEMPOTENCY_ENABLED=false: keys are ignored and health says the layer is off", async () => {
  const { handler, close } = build({ IDEMPOTENCY_ENABLED: "false" });
  const sql = sqlClient();
  const key = crypto.randomUUID();
  try {
    const r = await send(handler, post(join(uniqueGroup()), { "idempotency-key": "not valid;" }));
    assert.equal(r.status, 200);
    assert.deepEqual(await record(sql, key), []);
    const health = await (await handler(new Request(`${URL_}/health`))).json();
    assert.equal(health.idempotency.enabled, false);
    assert.equal(health.idempotency.reason, "IDEMPOTENCY_ENABLED=false");
  } finally {
    await close();
    await sql.end();
  }
});

Deno.test("Upstash tier: a retry on another instance is replayed from Redis; Redis down → the database replays", async () => {
  const endpoint = await startUpstashRestServer({ redisUrl: redisUrl(), token: "idem-token" });
  const redis = {
    UPSTASH_REDIS_REST_URL: endpoint.url,
    UPSTASH_REDIS_REST_TOKEN: "idem-token",
    IDEMPOTENCY_MEMORY_MAX_KEYS: "0",
    DEDUP_KEY_PREFIX: `idem-test-${crypto.randomUUID().slice(0, 8)}`,
  };
  const a = build(redis);
  const b = build(redis);
  const c = build({ ...redis, UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${freePort()}` });
  const sql = sqlClient();
  const key = crypto.randomUUID();
  const body = join(uniqueGroup());
  try {
    const first = await send(a.handler, post(body, { "idempotency-key": key }));
    assert.equal(first.status, 200);
    const commands = endpoint.stats.commands;
    const counter = await openWriteCounter(sql);
    try {
      const fromRedis = await send(b.handler, post(body, { "idempotency-key": key }));
      assert.equal(fromRedis.headers.get("idempotent-replayed"), "true");
      assert.deepEqual(fromRedis.bytes, first.bytes);
      assert.equal(endpoint.stats.commands, commands + 1); // one GET
      assert.equal((await record(sql, key))[0].replay_count, 0); // the database was not asked
      assert.deepEqual(await counter.writes(), []);
    } finally {
      await counter.close();
    }
    // Another payload with the key misses Redis (other fingerprint): the database answers 422.
    const reused = await send(b.handler, post(join(uniqueGroup()), { "idempotency-key": key }));
    assert.equal(reused.status, 422);
    // An instance whose Redis is unreachable replays from the database.
    const fromDb = await send(c.handler, post(body, { "idempotency-key": key }));
    assert.equal(fromDb.headers.get("idempotent-replayed"), "true");
    assert.deepEqual(fromDb.bytes, first.bytes);
    assert.equal((await record(sql, key))[0].replay_count, 1);
    const health = await (await c.handler(new Request(`${URL_}/health`))).json();
    assert.equal(health.idempotency.shared.state, "degraded");
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
    await endpoint.close();
    await sql.end();
  }
});

Deno.test("a replay the database served fills this instance's Map: the next retry costs nothing", async () => {
  const a = build();
  const b = build();
  const sql = sqlClient();
  const key = crypto.randomUUID();
  const body = join(uniqueGroup());
  try {
    const first = await send(a.handler, post(body, { "idempotency-key": key }));
    const fromDb = await send(b.handler, post(body, { "idempotency-key": key }));
    const fromMap = await send(b.handler, post(body, { "idempotency-key": key }));
    assert.deepEqual(fromDb.bytes, first.bytes);
    assert.deepEqual(fromMap.bytes, first.bytes);
    assert.equal(fromMap.headers.get("idempotent-replayed"), "true");
    assert.equal((await record(sql, key))[0].replay_count, 1); // only the first replay asked it
    const health = await (await b.handler(new Request(`${URL_}/health`))).json();
    assert.equal(health.idempotency.memory.hits, 1);
    assert.equal(health.idempotency.counters.replayedFromDatabase, 1);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await sql.end();
  }
});
