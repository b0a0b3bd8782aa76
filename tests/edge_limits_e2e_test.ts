/**
 * The functions under the platform's limits, in runner processes (index.ts as deployed): with an
 * instance evicted right after each response nothing is lost or doubled — webhook copies give
 * one row and one Realtime change each, a send batch messages each recipient once — and a batch
 * that takes longer than the wall clock finishes through the drain's continuation, each recipient
 * sent exactly once.
 */
import assert from "node:assert/strict";
import { startUpstashRestServer } from "../scripts/lib/upstash_rest_server.ts";
import * as ex from "./fixtures/message_examples.ts";
import {
  databaseUrl,
  groupRows,
  postSigned,
  redisUrl,
  sqlClient,
  TEST_SECRET,
  uniqueGroup,
} from "./support/env.ts";
import { FakeWhatsAppProvider, providerEnv } from "./support/fake_whatsapp_provider.ts";
import { startFunctionInstance } from "./support/function_instance.ts";
import { newUser } from "./support/jwt.ts";
import { MESSAGE_ENV } from "./support/message_webhook.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";
import { call, eventually, phones } from "./support/send_batch.ts";
import { signedHeaders } from "./support/signing.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const MEMBERSHIP = "whatsapp-membership-webhook";
const MESSAGES = "whatsapp-message-webhook";
const SEND = "whatsapp-send-batch";

Deno.test(
  "evicted after each response: webhook copies across two runners → one row and one change each",
  opts,
  async () => {
    const endpoint = await startUpstashRestServer({ redisUrl: redisUrl(), token: "evict-token" });
    const env = {
      SUPABASE_DB_URL: databaseUrl(),
      // The signing secrets of every scheme, WEBHOOK_SECRET among them.
      ...MESSAGE_ENV,
      UPSTASH_REDIS_REST_URL: endpoint.url,
      UPSTASH_REDIS_REST_TOKEN: "evict-token",
      DEDUP_KEY_PREFIX: `evict-${crypto.randomUUID()}`,
      EDGE_EVICT_AFTER_RESPONSE: "1",
    };
    const [a, b] = await Promise.all([startFunctionInstance(env), startFunctionInstance(env)]);
    const sql = sqlClient();
    const feed = await RealtimeChangeFeed.open(sql);
    try {
      // Each instance answers once: the Map a webhook filled is gone by the next request.
      const health = async () => {
        const response = await fetch(`${a.url(MEMBERSHIP)}/health`);
        return (await response.json()).tiers.memory.size as number;
      };
      const member = "919963064165@s.whatsapp.net";
      const groups = Array.from({ length: 3 }, () => uniqueGroup());
      for (const group of groups) {
        const event = { event: "join", groupJid: group, participant: member };
        // Two sessions' copies at once to both runners, then a gateway retry.
        const copies = await Promise.all([
          postSigned(a.url(MEMBERSHIP), { ...event, sessionId: "s1" }),
          postSigned(b.url(MEMBERSHIP), { ...event, sessionId: "s2" }),
        ]);
        const retry = await postSigned(a.url(MEMBERSHIP), { ...event, sessionId: "s1" });
        const outcomes = [...copies, retry].map((r) => {
          assert.equal(r.status, 200);
          return (r.body.results as { outcome: string }[])[0].outcome;
        });
        assert.equal(outcomes.filter((o) => o === "applied").length, 1, outcomes.join());
        assert.equal(await health(), 0, "a fresh instance answered the health check");
      }
      for (const group of groups) {
        assert.equal((await groupRows(sql, group)).length, 1);
        assert.equal((await feed.changes(group)).length, 1, group);
      }

      const account = ex.phoneNumberId();
      const ids = Array.from({ length: 2 }, () => `wamid.${ex.messageId("HBgM")}`);
      for (const id of ids) {
        const body = JSON.stringify(
          ex.metaWebhook(account, [{ messages: [ex.metaMessage({ id, from: ex.phoneDigits() })] }]),
        );
        const results = await Promise.all(
          [a, b, a, b].map(async (runner) => {
            const response = await fetch(runner.url(MESSAGES), {
              method: "POST",
              body,
              headers: { "content-type": "application/json", ...await signedHeaders("meta", body) },
            });
            return { status: response.status, body: await response.json() };
          }),
        );
        assert.ok(results.every((r) => r.status === 200));
        const outcomes = results.map((r) => r.body.results[0].outcome);
        assert.equal(outcomes.filter((o) => o === "applied").length, 1, outcomes.join());
        const [{ n }] = await sql<{ n: number }[]>`
          select count(*)::int as n from public.whatsapp_messages where message_id = ${id}`;
        assert.equal(n, 1);
        assert.equal((await feed.changes(id)).length, 1, id);
      }
    } finally {
      await feed.close();
      await sql.end();
      await a.stop();
      await b.stop();
      await endpoint.close();
    }
  },
);

Deno.test(
  "evicted after each response: a batch over several continuations sends each recipient once",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const runner = await startFunctionInstance({
      SUPABASE_DB_URL: databaseUrl(),
      WEBHOOK_SECRET: TEST_SECRET,
      ...providerEnv(fake, "meta"),
      SEND_RATE_PER_SECOND: "200",
      SEND_PROVIDER_TIMEOUT_MS: "1000",
      SEND_TIME_BUDGET_MS: "400",
      EDGE_EVICT_AFTER_RESPONSE: "1",
    });
    try {
      const user = await newUser();
      const list = phones(200);
      const created = await call(runner.url(SEND), "POST", "", user.jwt, {
        message: "Gate closes at 10",
        recipients: list.map((phone) => ({ phone })),
      });
      assert.equal(created.status, 201);
      const batchId = created.body.batch_id;
      assert.equal(
        (await call(runner.url(SEND), "POST", `/${batchId}/send`, user.jwt)).status,
        202,
      );
      await eventually(async () => {
        const p = await call(runner.url(SEND), "GET", `/${batchId}`, user.jwt);
        return p.body.done === true;
      }, 60_000);
      const p = await call(runner.url(SEND), "GET", `/${batchId}`, user.jwt);
      assert.deepEqual(p.body.counts, {
        pending: 0,
        processing: 0,
        sent: 200,
        failed: 0,
        unknown: 0,
      });
      const perRecipient = fake.callsPerRecipient();
      assert.equal(perRecipient.size, 200);
      assert.ok([...perRecipient.values()].every((n) => n === 1), "no recipient messaged twice");
    } finally {
      await runner.stop();
      await fake.stop();
    }
  },
);

Deno.test(
  "wall clock shorter than the batch: the drain goes on in fresh instances, each recipient once",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const wallClockMs = 5_000;
    const runner = await startFunctionInstance({
      SUPABASE_DB_URL: databaseUrl(),
      WEBHOOK_SECRET: TEST_SECRET,
      ...providerEnv(fake, "meta"),
      EDGE_WALL_CLOCK_MS: String(wallClockMs),
      // One invocation's budget and a call's bound stay within half the wall clock, as the
      // defaults do within the platform's (50 s + 15 s < 75 s).
      SEND_TIME_BUDGET_MS: "800",
      SEND_PROVIDER_TIMEOUT_MS: "1500",
      SEND_RATE_PER_SECOND: "100",
      SEND_CONCURRENCY: "4",
    });
    const memorySize = async () => {
      const response = await fetch(`${runner.url(MEMBERSHIP)}/health`);
      return (await response.json()).tiers.memory.size as number;
    };
    try {
      // A webhook leaves a key in its instance's Map: still there while that instance lives.
      const group = uniqueGroup();
      const join = { event: "join", groupJid: group, participant: "919963064165@s.whatsapp.net" };
      assert.equal((await postSigned(runner.url(MEMBERSHIP), join)).status, 200);
      assert.equal(await memorySize(), 1);

      const user = await newUser();
      const count = 600;
      const created = await call(runner.url(SEND), "POST", "", user.jwt, {
        message: "Your table is ready",
        recipients: phones(count).map((phone) => ({ phone })),
      });
      assert.equal(created.status, 201);
      const batchId = created.body.batch_id;
      const started = Date.now();
      assert.equal(
        (await call(runner.url(SEND), "POST", `/${batchId}/send`, user.jwt)).status,
        202,
      );
      await eventually(async () => {
        const p = await call(runner.url(SEND), "GET", `/${batchId}`, user.jwt);
        return p.body.done === true;
      }, 60_000);
      const elapsed = Date.now() - started;
      // At 100/s the batch outlives any one instance: fresh ones carried it on.
      assert.ok(elapsed > wallClockMs, `the batch took ${elapsed} ms`);
      const p = await call(runner.url(SEND), "GET", `/${batchId}`, user.jwt);
      assert.deepEqual(p.body.counts, {
        pending: 0,
        processing: 0,
        sent: count,
        failed: 0,
        unknown: 0,
      });
      const perRecipient = fake.callsPerRecipient();
      assert.equal(perRecipient.size, count);
      assert.ok([...perRecipient.values()].every((n) => n === 1), "no recipient messaged twice");
      // The webhook's instance did not outlive its wall clock either.
      assert.equal(await memorySize(), 0, "a fresh instance answers");
    } finally {
      await runner.stop();
      await fake.stop();
    }
  },
);
