/**
 * The handler in-process, against the real database: input checks, auth, responses, and the
 * claim/release lifecycle under database and Redis failures.
 */
import assert from "node:assert/strict";
import { createClient } from "@redis/client";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import { createLogger, silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { signBody } from "../supabase/functions/_shared/core/webhook_auth.ts";
import {
  createMembershipWebhookFromConfig,
  membershipWebhookFromEnv,
} from "../supabase/functions/whatsapp-membership-webhook/handler.ts";
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
import { startTcpForwarder } from "./support/tcp_forwarder.ts";
import { failGroup, healGroup, installFailureTrigger } from "./support/failure_trigger.ts";

const URL_ = "http://127.0.0.1/whatsapp-membership-webhook";
const HEALTH = `${URL_}/health`;

function build(env: Record<string, string> = {}) {
  return createMembershipWebhookFromConfig(
    parseConfig({ SUPABASE_DB_URL: databaseUrl(), WEBHOOK_SECRET: TEST_SECRET, ...env }),
    silentLogger,
  );
}

function signedRequest(payload: unknown, headers: Record<string, string> = {}) {
  const body = typeof payload === "string" ? payload : JSON.stringify(payload);
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

async function call(handler: (r: Request) => Promise<Response>, request: Request) {
  const response = await handler(request);
  return { status: response.status, headers: response.headers, body: await response.json() };
}

async function memorySize(handler: (r: Request) => Promise<Response>): Promise<number> {
  const health = await (await handler(new Request(HEALTH))).json();
  return health.tiers.memory.size;
}

function join(group: string, extra: Record<string, unknown> = {}) {
  return { event: "join", groupJid: group, participant: "919963064165@s.whatsapp.net", ...extra };
}

Deno.test("bad input: right status, clear JSON error, nothing written, no claim taken", async () => {
  const { handler, close } = build();
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  try {
    const valid = JSON.stringify(join(group));
    const huge = JSON.stringify(join(group, { pad: "x".repeat(70 * 1024) }));
    const streamed = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 80; i++) controller.enqueue(new Uint8Array(1024).fill(32));
        controller.close();
      },
    });
    const cases: [string, Request, number, string][] = [
      ["GET", new Request(URL_), 405, "method_not_allowed"],
      ["PUT", new Request(URL_, { method: "PUT", body: valid }), 405, "method_not_allowed"],
      ["too large", await signedRequest(huge), 413, "payload_too_large"],
      [
        "too large, streamed",
        new Request(URL_, { method: "POST", body: streamed }),
        413,
        "payload_too_large",
      ],
      ["malformed JSON", await signedRequest("{not json"), 400, "malformed_json"],
      ["not an object", await signedRequest("[1,2]"), 400, "unknown_format"],
      ["no known format", await signedRequest({ hello: "world" }), 400, "unknown_format"],
      [
        "unknown forced format",
        new Request(`${URL_}?format=telegram`, {
          method: "POST",
          body: valid,
          headers: { "x-webhook-signature": signature(valid) },
        }),
        400,
        "unknown_format",
      ],
      [
        "unknown event",
        await signedRequest({ ...join(group), event: "explode" }),
        400,
        "invalid_payload",
      ],
      [
        "no participant",
        await signedRequest({ event: "join", groupJid: group }),
        400,
        "invalid_payload",
      ],
      ["bad group", await signedRequest(join("hello")), 400, "invalid_payload"],
      [
        "bad participant",
        await signedRequest(join(group, { participant: "12@s.whatsapp.net" })),
        400,
        "invalid_payload",
      ],
      [
        "bad timestamp",
        await signedRequest(join(group, { timestamp: "soon" })),
        400,
        "invalid_payload",
      ],
      ["unsigned", new Request(URL_, { method: "POST", body: valid }), 401, "unauthorized"],
      [
        "wrong signature",
        new Request(URL_, {
          method: "POST",
          body: valid,
          headers: { "x-webhook-signature": signature(valid, "another-secret-0123456789") },
        }),
        401,
        "unauthorized",
      ],
      [
        "signature of another body",
        new Request(URL_, {
          method: "POST",
          body: valid,
          headers: { "x-webhook-signature": signature(valid + " ") },
        }),
        401,
        "unauthorized",
      ],
      [
        "malformed signature",
        new Request(URL_, {
          method: "POST",
          body: valid,
          headers: { "x-webhook-signature": "md5=abc" },
        }),
        401,
        "unauthorized",
      ],
      [
        "wrong bearer",
        new Request(URL_, {
          method: "POST",
          body: valid,
          headers: { authorization: "Bearer nope" },
        }),
        401,
        "unauthorized",
      ],
    ];
    for (const [name, request, status, code] of cases) {
      const result = await call(handler, request);
      assert.equal(result.status, status, `${name}: status`);
      assert.equal(result.body.success, false, `${name}: success`);
      assert.equal(result.body.error, code, `${name}: error code`);
      assert.equal(typeof result.body.message, "string", `${name}: message`);
      assert.equal(result.headers.get("content-type"), "application/json; charset=utf-8");
    }
    const schema = await call(handler, await signedRequest({ event: "explode", groupJid: 5 }));
    assert.deepEqual(schema.body.issues.map((i: { path: string }) => i.path).sort(), [
      "event",
      "groupJid",
    ]);
    const normalisation = await call(
      handler,
      await signedRequest(
        join("hello", { participants: ["919963064165", "12"], timestamp: "soon" }),
      ),
    );
    assert.deepEqual(
      normalisation.body.issues.map((i: { path: string }) => i.path).sort(),
      ["groupJid", "participants.1", "timestamp"],
    );
    assert.deepEqual(await groupRows(sql, group), []);
    assert.deepEqual(await feed.changes(group), []);
    assert.equal(await memorySize(handler), 0);
  } finally {
    await feed.close();
    await sql.end();
    await close();
  }
});

Deno.test("auth: a valid HMAC or bearer token is accepted", async () => {
  const { handler, close } = build();
  const sql = sqlClient();
  const group = uniqueGroup();
  try {
    const hmac = await call(handler, await signedRequest(join(group)));
    assert.equal(hmac.status, 200);
    assert.equal(hmac.body.results[0].outcome, "applied");
    const bearer = await call(
      handler,
      new Request(URL_, {
        method: "POST",
        headers: { authorization: `Bearer ${TEST_SECRET}` },
        body: JSON.stringify({ ...join(group), event: "leave" }),
      }),
    );
    assert.equal(bearer.status, 200);
    assert.equal(bearer.body.results[0].outcome, "applied");
    assert.equal((await groupRows(sql, group))[0].status, "left");
  } finally {
    await sql.end();
    await close();
  }
});

Deno.test("config: no secret refuses every webhook unless unsigned ones are allowed", async () => {
  const group = uniqueGroup();
  const sql = sqlClient();
  try {
    const refusing = membershipWebhookFromEnv(() => ({ SUPABASE_DB_URL: databaseUrl() }));
    const refused = await call(
      refusing,
      new Request(URL_, { method: "POST", body: JSON.stringify(join(group)) }),
    );
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error, "not_configured");
    assert.match(JSON.stringify(refused.body.issues), /WEBHOOK_SECRET/);

    const broken = membershipWebhookFromEnv(() => ({
      SUPABASE_DB_URL: databaseUrl(),
      WEBHOOK_SECRET: TEST_SECRET,
      DEDUP_WINDOW_MS: "soon",
    }));
    const misconfigured = await call(broken, await signedRequest(join(group)));
    assert.equal(misconfigured.status, 503);
    assert.match(JSON.stringify(misconfigured.body.issues), /DEDUP_WINDOW_MS/);
    assert.deepEqual(await groupRows(sql, group), []);

    const { handler, close } = build({ WEBHOOK_SECRET: "", ALLOW_UNSIGNED_WEBHOOKS: "true" });
    try {
      const open = await call(
        handler,
        new Request(URL_, { method: "POST", body: JSON.stringify(join(group)) }),
      );
      assert.equal(open.status, 200);
      assert.equal(open.body.results[0].outcome, "applied");
    } finally {
      await close();
    }
  } finally {
    await sql.end();
  }
});

Deno.test("events this function does not handle are acknowledged and ignored", async () => {
  const { handler, close } = build();
  const sql = sqlClient();
  const group = uniqueGroup();
  try {
    const result = await call(handler, await signedRequest({ ...join(group), event: "modify" }));
    assert.equal(result.status, 200);
    assert.equal(result.body.ignored, true);
    assert.deepEqual(result.body.results, []);
    assert.deepEqual(await groupRows(sql, group), []);
  } finally {
    await sql.end();
    await close();
  }
});

Deno.test("several participants: each is deduped on its own; phones are masked", async () => {
  const { handler, close } = build();
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  try {
    const payload = {
      event: "join",
      groupJid: group,
      participants: ["919963064165:4@s.whatsapp.net", "+91 99630 64165", "14155552671@c.us"],
      timestamp: Math.floor(Date.now() / 1000),
    };
    const first = await call(handler, await signedRequest(payload));
    assert.equal(first.status, 200);
    assert.equal(first.body.duplicate, false);
    assert.deepEqual(first.body.results.map((r: { outcome: string }) => r.outcome), [
      "applied",
      "duplicate",
      "applied",
    ]);
    assert.deepEqual(first.body.results.map((r: { phone: string }) => r.phone), [
      "+91*******165",
      "+91*******165",
      "+14******671",
    ]);
    assert.ok(!JSON.stringify(first.body).includes("9963064165"), "no full phone number");
    const again = await call(handler, await signedRequest({ ...payload, sessionId: "other" }));
    assert.equal(again.body.duplicate, true);
    assert.equal((await feed.changes(group)).length, 2);
    assert.equal((await groupRows(sql, group)).length, 2);
  } finally {
    await feed.close();
    await sql.end();
    await close();
  }
});

Deno.test("one invalid participant among valid ones: the valid ones apply, the bad one is reported", async () => {
  const { handler, close } = build();
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  try {
    const result = await call(
      handler,
      await signedRequest({
        event: "join",
        groupJid: group,
        participants: ["919963064165@s.whatsapp.net", "12", { id: 5 }, "14155552671@c.us"],
        timestamp: Math.floor(Date.now() / 1000),
      }),
    );
    assert.equal(result.status, 200);
    assert.deepEqual(result.body.results.map((r: { outcome: string }) => r.outcome), [
      "applied",
      "rejected",
      "rejected",
      "applied",
    ]);
    assert.equal(result.body.results[1].path, "participants.1");
    assert.match(result.body.results[1].reason, /digits/);
    assert.deepEqual((await groupRows(sql, group)).map((r) => r.phone), [
      "+14155552671",
      "+919963064165",
    ]);
    assert.equal((await feed.changes(group)).length, 2);
    assert.equal(await memorySize(handler), 2, "no claim for the rejected ones");
  } finally {
    await feed.close();
    await sql.end();
    await close();
  }
});

Deno.test("fields the function ignores never refuse a delivery (WAHA me, session, metadata)", async () => {
  const wahaKey = "waha-hmac-key-for-tests";
  const { handler, close } = build({ WAHA_HMAC_KEY: wahaKey });
  const sql = sqlClient();
  const group = uniqueGroup();
  try {
    const odd = [
      { id: "default1@c.us" },
      { id: "212345678901234@lid" },
      { id: 5 },
      "me",
      null,
    ];
    for (const [n, me] of odd.entries()) {
      const payload = {
        id: `evt_${n}`,
        timestamp: Date.now(),
        event: "group.v2.participants",
        session: n % 2 ? { name: "s" } : 42,
        me,
        metadata: [1, 2, 3],
        environment: "weird",
        engine: "GOWS",
        payload: {
          group: { id: group },
          type: n % 2 ? "leave" : "join",
          timestamp: Date.now() - 60_000 + n * 5_000,
          participants: [{ id: "919963064165@c.us", role: "participant", extra: { any: true } }],
        },
      };
      const body = JSON.stringify(payload);
      const result = await call(
        handler,
        new Request(URL_, {
          method: "POST",
          body,
          headers: {
            "x-webhook-hmac": signBody(wahaKey, body, "sha512"),
            "x-webhook-hmac-algorithm": "sha512",
          },
        }),
      );
      assert.equal(result.status, 200, `me=${JSON.stringify(me)}: ${JSON.stringify(result.body)}`);
      assert.equal(result.body.results[0].outcome, "applied");
    }
    const generic = await call(
      handler,
      await signedRequest({ ...join(group), sessionId: { nested: [1] }, instance: 7 }),
    );
    assert.equal(generic.status, 200);
    assert.equal((await groupRows(sql, group))[0].status, "member");
  } finally {
    await sql.end();
    await close();
  }
});

Deno.test("join → leave → join 200 ms apart, two sessions to two instances → member, 3 changes", async () => {
  for (const redis of [false, true]) {
    const endpoint = redis
      ? await startUpstashRestServer({ redisUrl: redisUrl(), token: "tok" })
      : undefined;
    const env: Record<string, string> = endpoint
      ? {
        UPSTASH_REDIS_REST_URL: endpoint.url,
        UPSTASH_REDIS_REST_TOKEN: "tok",
        DEDUP_KEY_PREFIX: `t${crypto.randomUUID().slice(0, 8)}`,
      }
      : {};
    const a = build(env);
    const b = build(env);
    const sql = sqlClient();
    const feed = await RealtimeChangeFeed.open(sql);
    const group = uniqueGroup();
    // Millisecond timestamps 200 ms apart, all inside one 5 s bucket and one copy window.
    const start = Math.floor((Date.now() - 60_000) / 5_000) * 5_000 + 100;
    try {
      for (const [n, event] of ["join", "leave", "join"].entries()) {
        const payload = join(group, { event, timestamp: String(start + 200 * n) });
        const [r1, r2] = await Promise.all([
          call(a.handler, await signedRequest({ ...payload, sessionId: "s1" })),
          call(b.handler, await signedRequest({ ...payload, sessionId: "s2" })),
        ]);
        assert.equal(r1.status, 200);
        assert.equal(r2.status, 200);
      }
      assert.equal((await groupRows(sql, group))[0].status, "member", `redis=${redis}`);
      assert.equal((await feed.changes(group)).length, 3, `redis=${redis}`);
    } finally {
      await feed.close();
      await sql.end();
      await a.close();
      await b.close();
      await endpoint?.close();
    }
  }
});

Deno.test("one webhook with join, leave and join of one person applies all three", async () => {
  const metaSecret = "meta-app-secret-for-tests";
  const { handler, close } = build({ META_APP_SECRET: metaSecret });
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  // The start of a 5 s bucket: all three events share one dedup key but for the action.
  const t = Math.floor((Date.now() / 1000 - 60) / 5) * 5;
  const change = (type: string, ts: number) => ({
    timestamp: String(ts),
    group_id: group.replace("@g.us", ""),
    type,
    [type.endsWith("add") ? "added_participants" : "removed_participants"]: [
      { wa_id: "919963064165" },
    ],
  });
  const body = JSON.stringify({
    object: "whatsapp_business_account",
    entry: [{
      id: "1",
      changes: [{
        field: "group_participants_update",
        value: {
          messaging_product: "whatsapp",
          groups: [
            change("group_participants_add", t),
            change("group_participants_remove", t + 2),
            change("group_participants_add", t + 4),
          ],
        },
      }],
    }],
  });
  try {
    const response = await handler(
      new Request(URL_, {
        method: "POST",
        body,
        headers: { "x-hub-signature-256": `sha256=${signBody(metaSecret, body)}` },
      }),
    );
    const result = await response.json();
    assert.deepEqual(result.results.map((r: { outcome: string }) => r.outcome), [
      "applied",
      "applied",
      "applied",
    ]);
    assert.deepEqual((await feed.changes(group)).map((c) => c.op), ["INSERT", "UPDATE", "UPDATE"]);
    assert.equal((await groupRows(sql, group))[0].status, "member");
  } finally {
    await feed.close();
    await sql.end();
    await close();
  }
});

Deno.test("database outage: 503, claims released, the retry is applied exactly once", async () => {
  const port = Number(new URL(databaseUrl()).port);
  const forwarder = startTcpForwarder(port);
  const url = new URL(databaseUrl());
  url.port = String(forwarder.port);
  const endpoint = await startUpstashRestServer({ redisUrl: redisUrl(), token: "tok" });
  const prefix = `t${crypto.randomUUID().slice(0, 8)}`;
  const { handler, close } = build({
    SUPABASE_DB_URL: url.href,
    DB_TIMEOUT_MS: "2000",
    UPSTASH_REDIS_REST_URL: endpoint.url,
    UPSTASH_REDIS_REST_TOKEN: "tok",
    DEDUP_KEY_PREFIX: prefix,
  });
  const redis = createClient({ url: redisUrl(), RESP: 2 });
  await redis.connect();
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  const payload = join(group, { timestamp: Math.floor(Date.now() / 1000) });
  try {
    forwarder.stop();
    const down = await call(handler, await signedRequest(payload));
    assert.equal(down.status, 503);
    assert.equal(down.body.error, "database_unavailable");
    assert.equal(down.headers.get("retry-after"), "5");
    assert.equal(await memorySize(handler), 0, "memory claim released");
    // Only the person's action times stay (they can only send a later copy to the database).
    const left = (await redis.sendCommand(["KEYS", `${prefix}:*`])) as string[];
    assert.deepEqual(left.filter((key) => !key.startsWith(`${prefix}:s:`)), [], "claim released");
    assert.deepEqual(await groupRows(sql, group), []);

    forwarder.start();
    const retry = await call(handler, await signedRequest(payload));
    assert.equal(retry.status, 200);
    assert.equal(retry.body.results[0].outcome, "applied");
    const again = await call(handler, await signedRequest(payload));
    assert.equal(again.body.results[0].outcome, "duplicate");
    assert.deepEqual((await feed.changes(group)).map((c) => c.op), ["INSERT"]);
  } finally {
    forwarder.stop();
    redis.destroy();
    await feed.close();
    await sql.end();
    await close();
    await endpoint.close();
  }
});

Deno.test("a Redis claim left by an instance that died never swallows the retry", async () => {
  const endpoint = await startUpstashRestServer({ redisUrl: redisUrl(), token: "tok" });
  const prefix = `t${crypto.randomUUID().slice(0, 8)}`;
  const env = {
    UPSTASH_REDIS_REST_URL: endpoint.url,
    UPSTASH_REDIS_REST_TOKEN: "tok",
    DEDUP_KEY_PREFIX: prefix,
  };
  const survivor = build(env);
  const other = build(env);
  const redis = createClient({ url: redisUrl(), RESP: 2 });
  await redis.connect();
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  const ts = Math.floor(Date.now() / 1000);
  try {
    // The instance that took this claim died before writing to the database.
    const key = `${prefix}:join|${group}|+919963064165|${Math.floor((ts * 1000) / 5000)}`;
    await redis.sendCommand(["SET", key, "p:dead-instance:1", "PX", "600000"]);
    const retry = await call(survivor.handler, await signedRequest(join(group, { timestamp: ts })));
    assert.equal(retry.body.results[0].outcome, "applied");
    // The survivor's confirmation replaced the dead claim: copies after that are answered by
    // Redis, without the database.
    const copy = await call(other.handler, await signedRequest(join(group, { timestamp: ts })));
    assert.equal(copy.body.results[0].outcome, "duplicate");
    assert.equal((await feed.changes(group)).length, 1);
  } finally {
    redis.destroy();
    await feed.close();
    await sql.end();
    await survivor.close();
    await other.close();
    await endpoint.close();
  }
});

Deno.test("confirmed claims answer copies on other instances without the database", async () => {
  const endpoint = await startUpstashRestServer({ redisUrl: redisUrl(), token: "tok" });
  const env = {
    UPSTASH_REDIS_REST_URL: endpoint.url,
    UPSTASH_REDIS_REST_TOKEN: "tok",
    DEDUP_KEY_PREFIX: `t${crypto.randomUUID().slice(0, 8)}`,
  };
  const first = build(env);
  const second = build(env);
  const group = uniqueGroup();
  const payload = join(group, { timestamp: Math.floor(Date.now() / 1000) });
  try {
    assert.equal(
      (await call(first.handler, await signedRequest(payload))).body.results[0].outcome,
      "applied",
    );
    // Right after the first copy's response: the confirmation goes out after it (waitUntil), and
    // a copy that finds the claim still in flight waits for it. "duplicate" is only ever answered
    // by a cache: this copy cost no database round trip.
    const copy = await call(second.handler, await signedRequest(payload));
    assert.equal(copy.body.results[0].outcome, "duplicate");
    await first.close();
  } finally {
    await second.close();
    await endpoint.close();
  }
});

Deno.test("database error in the apply function: 503, then the retry is applied once", async () => {
  const sql = sqlClient();
  await installFailureTrigger(sql);
  const { handler, close } = build();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  const payload = join(group, { timestamp: Math.floor(Date.now() / 1000) });
  try {
    await failGroup(sql, group);
    const failed = await call(handler, await signedRequest(payload));
    assert.equal(failed.status, 503);
    await healGroup(sql, group);
    const retry = await call(handler, await signedRequest(payload));
    assert.equal(retry.body.results[0].outcome, "applied");
    const again = await call(handler, await signedRequest({ ...payload, sessionId: "b" }));
    assert.equal(again.body.results[0].outcome, "duplicate");
    assert.equal((await feed.changes(group)).length, 1);
  } finally {
    await feed.close();
    await sql.end();
    await close();
  }
});

Deno.test("redis down or slow: fail-open to the database, never a duplicate; health shows it", async () => {
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  const downPort = freePort();
  const down = build({
    UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${downPort}`,
    UPSTASH_REDIS_REST_TOKEN: "tok",
    REDIS_COOLDOWN_MS: "0",
  });
  const endpoint = await startUpstashRestServer({ redisUrl: redisUrl(), token: "tok" });
  endpoint.faults.delayMs = 2_000;
  const slow = build({
    UPSTASH_REDIS_REST_URL: endpoint.url,
    UPSTASH_REDIS_REST_TOKEN: "tok",
    REDIS_TIMEOUT_MS: "200",
  });
  try {
    const first = await call(down.handler, await signedRequest(join(group)));
    assert.equal(first.status, 200);
    assert.equal(first.body.results[0].outcome, "applied");
    const health = await (await down.handler(new Request(HEALTH))).json();
    assert.equal(health.status, "degraded");
    assert.equal(health.tiers.redis.state, "degraded");
    assert.ok(health.tiers.redis.consecutiveFailures >= 1);

    // Another instance whose Redis answers late: the copy goes to the database, which writes nothing.
    const started = Date.now();
    const copy = await call(slow.handler, await signedRequest(join(group, { sessionId: "b" })));
    assert.ok(Date.now() - started < 1_500, "bounded by REDIS_TIMEOUT_MS");
    assert.equal(copy.body.results[0].outcome, "unchanged");
    const leave = await call(slow.handler, await signedRequest({ ...join(group), event: "leave" }));
    assert.equal(leave.body.results[0].outcome, "applied");
    assert.deepEqual((await feed.changes(group)).map((c) => c.op), ["INSERT", "UPDATE"]);
  } finally {
    endpoint.faults.delayMs = 0;
    await feed.close();
    await sql.end();
    await down.close();
    await slow.close();
    await endpoint.close();
  }
});

Deno.test("logs: phone numbers are masked and secrets never written", () => {
  const lines: string[] = [];
  const original = console.log;
  console.log = (line: string) => lines.push(line);
  try {
    const logger = createLogger("info");
    logger.info("x", {
      error: "duplicate key (+919963064165, 120363025246125486@g.us)",
      token: "abc",
    });
  } finally {
    console.log = original;
  }
  assert.equal(lines.length, 1);
  assert.ok(!lines[0].includes("9963064165"), lines[0]);
  assert.ok(!lines[0].includes("abc"), lines[0]);
  assert.match(lines[0], /\+91\*+165/);
});

Deno.test("review: a malformed participant entry or a missing `me` rejects only itself", async () => {
  const wahaKey = "waha-hmac-key-for-tests";
  const { handler, close } = build({ WAHA_HMAC_KEY: wahaKey });
  const sql = sqlClient();
  const group = uniqueGroup();
  const signed = (payload: unknown) => {
    const body = JSON.stringify(payload);
    return new Request(URL_, {
      method: "POST",
      body,
      headers: {
        "x-webhook-hmac": signBody(wahaKey, body, "sha512"),
        "x-webhook-hmac-algorithm": "sha512",
      },
    });
  };
  try {
    // WAHA with no `me` key at all, and entries of the wrong shape among good ones.
    const waha = await call(
      handler,
      signed({
        event: "group.v2.participants",
        session: "default",
        payload: {
          group: { id: group },
          type: "join",
          timestamp: Date.now() - 60_000,
          participants: [{ id: "5511966200002@c.us" }, { pn: "5511966200003@c.us" }, {
            id: 5511966200004,
          }, "x"],
        },
      }),
    );
    assert.equal(waha.status, 200, JSON.stringify(waha.body));
    assert.deepEqual(waha.body.results.map((r: { outcome: string }) => r.outcome), [
      "applied",
      "rejected",
      "rejected",
      "rejected",
    ]);
    // Baileys (through the generic signature) with a null participant.
    const baileys = await call(
      handler,
      await signedRequest({
        id: group,
        author: null,
        participants: ["5511966100004@s.whatsapp.net", null, { id: null }],
        action: "add",
      }),
    );
    assert.equal(baileys.status, 200, JSON.stringify(baileys.body));
    assert.deepEqual(baileys.body.results.map((r: { outcome: string }) => r.outcome), [
      "applied",
      "rejected",
      "rejected",
    ]);
    // whatsapp-web.js with a null recipient.
    const wwebjs = await call(
      handler,
      await signedRequest({
        event: "group_join",
        data: {
          notification: {
            id: { remote: group },
            type: "add",
            timestamp: Math.floor(Date.now() / 1000) - 30,
            chatId: group,
            author: "5511966400001@c.us",
            recipientIds: ["5511966400003@c.us", null],
          },
        },
      }),
    );
    assert.equal(wwebjs.status, 200, JSON.stringify(wwebjs.body));
    assert.equal((await groupRows(sql, group)).length, 3);
  } finally {
    await sql.end();
    await close();
  }
});
