/**
 * End to end over HTTP: two function instances (separate processes running the local runner)
 * share the real PostgreSQL and a real Redis behind the Upstash-compatible endpoint. Realtime
 * events are counted from a logical replication slot.
 */
import assert from "node:assert/strict";
import { freePort } from "../scripts/lib/ports.ts";
import { startRedis } from "../scripts/lib/redis_server.ts";
import { startUpstashRestServer } from "../scripts/lib/upstash_rest_server.ts";
import {
  databaseUrl,
  groupRows,
  postSigned,
  sqlClient,
  TEST_SECRET,
  uniqueGroup,
} from "./support/env.ts";
import { failGroup, healGroup, installFailureTrigger } from "./support/failure_trigger.ts";
import { startFunctionInstance } from "./support/function_instance.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";

const FN = "whatsapp-membership-webhook";
const WINDOW = 5000;

Deno.test("e2e: two instances, shared database and Redis", async (t) => {
  const redis = await startRedis({ port: freePort() });
  const endpoint = await startUpstashRestServer({ redisUrl: redis.url, token: "e2e-token" });
  const env = {
    SUPABASE_DB_URL: databaseUrl(),
    WEBHOOK_SECRET: TEST_SECRET,
    UPSTASH_REDIS_REST_URL: endpoint.url,
    UPSTASH_REDIS_REST_TOKEN: "e2e-token",
    DEDUP_WINDOW_MS: String(WINDOW),
    REDIS_TIMEOUT_MS: "300",
    REDIS_COOLDOWN_MS: "0",
  };
  const [a, b] = await Promise.all([startFunctionInstance(env), startFunctionInstance(env)]);
  const A = a.url(FN);
  const B = b.url(FN);
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  // A bucket boundary in the recent past, so that source timestamps are plausible.
  const boundary = Math.floor((Date.now() - 60_000) / WINDOW) * WINDOW;
  const member = "919963064165@s.whatsapp.net";

  try {
    await t.step(
      "one event from two sessions, concurrently to two instances → one change",
      async () => {
        const group = uniqueGroup();
        const event = { event: "join", groupJid: group, participant: member };
        const [r1, r2] = await Promise.all([
          postSigned(A, { ...event, sessionId: "session-1" }),
          postSigned(B, { ...event, sessionId: "session-2" }),
        ]);
        assert.equal(r1.status, 200);
        assert.equal(r2.status, 200);
        const outcomes = [r1, r2].map((r) => (r.body.results as { outcome: string }[])[0].outcome)
          .sort();
        assert.equal(outcomes.filter((o) => o === "applied").length, 1, outcomes.join());
        assert.equal((await feed.changes(group)).length, 1);
      },
    );

    await t.step("two deliveries straddling a bucket boundary → one change", async () => {
      const group = uniqueGroup();
      const event = { event: "join", groupJid: group, participant: member };
      const r1 = await postSigned(A, {
        ...event,
        timestamp: boundary + WINDOW - 1,
        sessionId: "s1",
      });
      const r2 = await postSigned(B, {
        ...event,
        timestamp: boundary + WINDOW + 1,
        sessionId: "s2",
      });
      assert.equal((r1.body.results as { outcome: string }[])[0].outcome, "applied");
      assert.equal((r2.body.results as { outcome: string }[])[0].outcome, "unchanged");
      assert.equal((await feed.changes(group)).length, 1);
    });

    await t.step("join → leave → join inside one window, each twice → three changes", async () => {
      const group = uniqueGroup();
      const base = { groupJid: group, participant: member };
      for (const [event, offset] of [["join", 0], ["leave", 1000], ["join", 2000]] as const) {
        const body = { ...base, event, timestamp: boundary + offset };
        const results = await Promise.all([
          postSigned(A, { ...body, sessionId: "s1" }),
          postSigned(B, { ...body, sessionId: "s2" }),
        ]);
        assert.ok(results.every((r) => r.status === 200));
      }
      assert.deepEqual((await feed.changes(group)).map((c) => c.op), [
        "INSERT",
        "UPDATE",
        "UPDATE",
      ]);
      assert.equal((await groupRows(sql, group))[0].status, "member");
    });

    await t.step("rejoin whose leave went only to the other instance is not lost", async () => {
      const group = uniqueGroup();
      const base = { groupJid: group, participant: member };
      const at = boundary + 5 * WINDOW;
      for (const url of [A, A]) await postSigned(url, { ...base, event: "join", timestamp: at });
      for (const url of [B, B]) {
        await postSigned(url, { ...base, event: "leave", timestamp: at + 1500 });
      }
      for (const url of [A, A]) {
        await postSigned(url, { ...base, event: "join", timestamp: at + 3000 });
      }
      assert.deepEqual((await feed.changes(group)).map((c) => c.op), [
        "INSERT",
        "UPDATE",
        "UPDATE",
      ]);
      assert.equal((await groupRows(sql, group))[0].status, "member");
    });

    await t.step("join → leave → join without source timestamps → three changes", async () => {
      const group = uniqueGroup();
      const base = { groupJid: group, participant: member };
      for (const [n, event] of ["join", "leave", "join"].entries()) {
        // A person takes more than the copy window (1 s) to leave and be added back.
        if (n > 0) await new Promise((r) => setTimeout(r, 1100));
        await Promise.all([
          postSigned(A, { ...base, event, sessionId: "s1" }),
          postSigned(B, { ...base, event, sessionId: "s2" }),
        ]);
      }
      assert.equal((await feed.changes(group)).length, 3);
      assert.equal((await groupRows(sql, group))[0].status, "member");
    });

    await t.step(
      "a late duplicate of an older event after a newer one → no change",
      async () => {
        const group = uniqueGroup();
        const base = { groupJid: group, participant: member };
        await postSigned(A, { ...base, event: "join", timestamp: boundary });
        await postSigned(B, { ...base, event: "leave", timestamp: boundary + 2000 });
        const late = await postSigned(B, {
          ...base,
          event: "join",
          timestamp: boundary,
          sessionId: "s3",
        });
        // A retry of the first join: Redis knows it (confirmed after A's response) and no other
        // action of the person lies between the two deliveries' times.
        assert.equal((late.body.results as { outcome: string }[])[0].outcome, "duplicate");
        assert.equal((await feed.changes(group)).length, 2);
        assert.equal((await groupRows(sql, group))[0].status, "left");
      },
    );

    await t.step("Redis stopped mid-test → still 200s, one change per real event", async () => {
      const group = uniqueGroup();
      const base = { groupJid: group, participant: member };
      await postSigned(A, { ...base, event: "join", participant: "14155552671@c.us" });
      await redis.stop();
      try {
        for (const event of ["join", "leave"]) {
          const results = await Promise.all([
            postSigned(A, { ...base, event, sessionId: "s1" }),
            postSigned(B, { ...base, event, sessionId: "s2" }),
          ]);
          for (const r of results) assert.equal(r.status, 200);
        }
        const health = await (await fetch(`${A}/health`)).json();
        assert.equal(health.tiers.redis.state, "degraded");
      } finally {
        await redis.start();
      }
      const changes = await feed.changes(group);
      assert.equal(changes.filter((c) => c.data.includes("+919963064165")).length, 2);
      assert.equal(changes.length, 3);
    });

    await t.step("the database failing once → 503, then the retry is applied once", async () => {
      await installFailureTrigger(sql);
      const group = uniqueGroup();
      const body = { event: "join", groupJid: group, participant: member, timestamp: boundary };
      await failGroup(sql, group);
      const failed = await postSigned(A, body);
      assert.equal(failed.status, 503);
      await healGroup(sql, group);
      const [retryA, copyB] = await Promise.all([
        postSigned(A, body),
        postSigned(B, { ...body, sessionId: "s2" }),
      ]);
      assert.equal(retryA.status, 200);
      assert.equal(copyB.status, 200);
      assert.equal((await feed.changes(group)).length, 1);
    });

    await t.step("bad inputs over HTTP → right status, no rows, no changes", async () => {
      const group = uniqueGroup();
      const valid = { event: "join", groupJid: group, participant: member };
      const statuses = [
        (await fetch(A)).status,
        (await fetch(A, { method: "POST", body: JSON.stringify(valid) })).status,
        (await postSigned(A, "{oops")).status,
        (await postSigned(A, { ...valid, event: "party" })).status,
        (await postSigned(A, { ...valid, pad: "x".repeat(65 * 1024) })).status,
        (await fetch(`${a.baseUrl}/no-such-function`)).status,
      ];
      assert.deepEqual(statuses, [405, 401, 400, 400, 413, 404]);
      assert.deepEqual(await groupRows(sql, group), []);
      assert.deepEqual(await feed.changes(group), []);
    });
  } finally {
    await feed.close();
    await sql.end();
    await Promise.all([a.stop(), b.stop()]);
    await endpoint.close();
    await redis.stop();
  }
});
