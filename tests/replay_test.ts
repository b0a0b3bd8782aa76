/**
 * Replays of captured signed deliveries (issue 13, finding 3): an event keeps its own time however
 * old; one beyond the ordering horizon (30 days) is answered `stale` before any tier (no claim in
 * the Map or Redis, nothing written); Standard Webhooks refuses a timestamp outside ±5 minutes.
 */
import assert from "node:assert/strict";
import { createClient } from "@redis/client";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { createMembershipWebhookFromConfig } from "../supabase/functions/whatsapp-membership-webhook/handler.ts";
import { startUpstashRestServer } from "../scripts/lib/upstash_rest_server.ts";
import { databaseUrl, groupRows, redisUrl, sqlClient, uniqueGroup } from "./support/env.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";
import { SECRETS, signedHeaders } from "./support/signing.ts";
import {
  buildMessageWebhook,
  callHandler,
  jsonDelivery,
  MESSAGE_URL,
} from "./support/message_webhook.ts";
import * as ex from "./fixtures/message_examples.ts";

const URL_ = "http://127.0.0.1/whatsapp-membership-webhook";
const DAY_MS = 24 * 60 * 60 * 1000;
const PERSON = "+919963064165";
type Handler = (request: Request) => Promise<Response>;

function buildMembership(env: Record<string, string> = {}) {
  return createMembershipWebhookFromConfig(
    parseConfig({ SUPABASE_DB_URL: databaseUrl(), ...SECRETS, ...env }),
    silentLogger,
  );
}

/** A generic membership delivery signed with the project's HMAC (no timestamp is signed). */
async function membershipDelivery(event: string, group: string, at: number): Promise<Request> {
  const body = JSON.stringify({
    event,
    groupJid: group,
    participant: "919963064165@s.whatsapp.net",
    timestamp: Math.floor(at / 1000),
  });
  return new Request(URL_, {
    method: "POST",
    headers: { "content-type": "application/json", ...(await signedHeaders("generic", body)) },
    body,
  });
}

async function call(handler: Handler, request: Request) {
  const response = await handler(request);
  return { status: response.status, body: await response.json() };
}

async function memorySize(handler: Handler, url = URL_): Promise<number> {
  return (await (await handler(new Request(`${url}/health`))).json()).tiers.memory.size;
}

async function clockRows(sql: ReturnType<typeof sqlClient>, group: string) {
  return [
    ...await sql<{ person: string; actions: Record<string, number> }[]>`
      select person, actions from public.whatsapp_member_clock where group_jid = ${group}`,
  ];
}

/** Runs `body` against an instance with the Map only, and one with the Map and Redis. */
const TIERS: [string, boolean][] = [["Map", false], ["Map and Redis", true]];

async function withInstance(
  redis: boolean,
  run: (instance: ReturnType<typeof buildMembership>, prefix: string) => Promise<void>,
) {
  const prefix = `replay${crypto.randomUUID().slice(0, 8)}`;
  const endpoint = redis
    ? await startUpstashRestServer({ redisUrl: redisUrl(), token: "tok" })
    : undefined;
  const instance = buildMembership(
    endpoint
      ? {
        UPSTASH_REDIS_REST_URL: endpoint.url,
        UPSTASH_REDIS_REST_TOKEN: "tok",
        DEDUP_KEY_PREFIX: prefix,
      }
      : {},
  );
  try {
    await run(instance, prefix);
  } finally {
    await instance.close();
    await endpoint?.close();
  }
}

/** Redis keys of this instance's claims for an action. */
async function redisClaims(prefix: string, action: string): Promise<string[]> {
  const redis = createClient({ url: redisUrl(), RESP: 2 });
  await redis.connect();
  try {
    return await redis.keys(`${prefix}:${action}|*`);
  } finally {
    redis.destroy();
  }
}

for (const [tiers, redis] of TIERS) {
  Deno.test(`replay (${tiers}): a 31-day-old signed leave after a newer join is stale`, async () => {
    await withInstance(redis, async ({ handler }, prefix) => {
      const sql = sqlClient();
      const feed = await RealtimeChangeFeed.open(sql);
      const group = uniqueGroup();
      try {
        const joined = await call(handler, await membershipDelivery("join", group, Date.now()));
        assert.equal(joined.body.results[0].outcome, "applied");
        const claimsAfterJoin = await memorySize(handler);

        const old = Date.now() - 31 * DAY_MS;
        const replay = await call(handler, await membershipDelivery("leave", group, old));
        assert.equal(replay.status, 200);
        assert.equal(replay.body.success, true);
        assert.deepEqual(replay.body.results, [
          { phone: "+91*******165", event: "leave", outcome: "stale" },
        ]);
        assert.deepEqual((await groupRows(sql, group)).map((r) => [r.phone, r.status]), [
          [PERSON, "member"],
        ]);
        assert.deepEqual((await feed.changes(group)).map((c) => c.op), ["INSERT"]);
        // No tier saw it: no Map claim, no Redis claim, the database's clock has no leave.
        assert.equal(await memorySize(handler), claimsAfterJoin);
        if (redis) assert.deepEqual(await redisClaims(prefix, "leave"), []);
        assert.deepEqual((await clockRows(sql, group)).map((c) => Object.keys(c.actions)), [
          ["join"],
        ]);
      } finally {
        await feed.close();
        await sql.end();
      }
    });
  });

  Deno.test(`replay (${tiers}): a 31-day-old leave for a person with no row writes nothing`, async () => {
    await withInstance(redis, async ({ handler }, prefix) => {
      const sql = sqlClient();
      const feed = await RealtimeChangeFeed.open(sql);
      const group = uniqueGroup();
      try {
        const old = Date.now() - 31 * DAY_MS;
        const replay = await call(handler, await membershipDelivery("leave", group, old));
        assert.equal(replay.status, 200);
        assert.equal(replay.body.results[0].outcome, "stale");
        assert.deepEqual(await groupRows(sql, group), []);
        assert.deepEqual(await clockRows(sql, group), []);
        assert.deepEqual(await feed.changes(group), []);
        assert.equal(await memorySize(handler), 0);
        if (redis) assert.deepEqual(await redisClaims(prefix, "leave"), []);
      } finally {
        await feed.close();
        await sql.end();
      }
    });
  });
}

Deno.test("replay: 29 days old is still ordered by the database, with its own time", async () => {
  await withInstance(false, async ({ handler }) => {
    const sql = sqlClient();
    const joinedGroup = uniqueGroup();
    const emptyGroup = uniqueGroup();
    try {
      await call(handler, await membershipDelivery("join", joinedGroup, Date.now()));
      const old = Date.now() - 29 * DAY_MS;
      const late = await call(handler, await membershipDelivery("leave", joinedGroup, old));
      assert.equal(late.body.results[0].outcome, "stale");
      assert.equal((await groupRows(sql, joinedGroup))[0].status, "member");

      // A person with no row: the leave applies, dated at its own time, not at its receipt.
      const first = await call(handler, await membershipDelivery("leave", emptyGroup, old));
      assert.equal(first.body.results[0].outcome, "applied");
      const [row] = await groupRows(sql, emptyGroup);
      assert.equal(row.status, "left");
      assert.equal(row.last_event_at.getTime(), Math.floor(old / 1000) * 1000);
    } finally {
      await sql.end();
    }
  });
});

/** Standard Webhooks headers signed `ageSeconds` ago. */
function standardHeadersAged(body: string, ageSeconds: number): Record<string, string> {
  const id = `msg_${crypto.randomUUID()}`;
  const when = new Date(Date.now() - ageSeconds * 1000);
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(when.getTime() / 1000)),
    "webhook-signature": new StandardWebhook(SECRETS.STANDARD_WEBHOOKS_SECRET).sign(id, when, body),
  };
}

Deno.test("replay: a Standard Webhooks delivery signed 6 minutes ago → 401, nothing written", async () => {
  await withInstance(false, async ({ handler }) => {
    const sql = sqlClient();
    const group = uniqueGroup();
    const body = JSON.stringify({
      id: group,
      author: null,
      action: "add",
      participants: ["919963064165@s.whatsapp.net"],
    });
    try {
      const replay = await call(
        handler,
        new Request(URL_, { method: "POST", body, headers: standardHeadersAged(body, 6 * 60) }),
      );
      assert.equal(replay.status, 401);
      assert.equal(replay.body.error, "unauthorized");
      assert.match(replay.body.message, /too old/);
      assert.deepEqual(await groupRows(sql, group), []);
      assert.equal(await memorySize(handler), 0);
      // Within the tolerance the same body is accepted (the check is the timestamp, not the body).
      const fresh = await call(
        handler,
        new Request(URL_, { method: "POST", body, headers: standardHeadersAged(body, 4 * 60) }),
      );
      assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
      assert.equal(fresh.body.results[0].outcome, "applied");
    } finally {
      await sql.end();
    }
  });
});

async function storedMessages(sql: ReturnType<typeof sqlClient>, account: string) {
  return [
    ...await sql<{ message_id: string; status: string | null; sent_at: Date | null }[]>`
      select message_id, status, sent_at from public.whatsapp_messages where account = ${account}
      order by message_id`,
  ];
}

Deno.test("replay: messages and statuses older than 30 days are stale and stored nowhere", async () => {
  const sql = sqlClient();
  const instance = buildMessageWebhook();
  const account = ex.phoneNumberId();
  const customer = ex.phoneDigits();
  const oldSeconds = Math.floor((Date.now() - 31 * DAY_MS) / 1000);
  const recentSeconds = Math.floor((Date.now() - 29 * DAY_MS) / 1000);
  const [oldId, oldStatusId, recentId] = [1, 2, 3].map(() => `wamid.${ex.messageId()}`);
  try {
    const result = await callHandler(
      instance.handler,
      await jsonDelivery(
        ex.metaWebhook(account, [{
          messages: [
            ex.metaMessage({ id: oldId, from: customer, ts: oldSeconds }),
            ex.metaMessage({ id: recentId, from: customer, ts: recentSeconds }),
          ],
          statuses: [
            ex.metaStatus({ id: oldStatusId, status: "read", recipient: customer, ts: oldSeconds }),
          ],
        }]),
        "meta",
      ),
    );
    assert.equal(result.status, 200, JSON.stringify(result.body));
    assert.deepEqual(result.body.results.map((r: { outcome: string }) => r.outcome), [
      "stale",
      "applied",
      "stale",
    ]);
    // Only the 29-day-old message is stored, dated at its own time.
    const rows = await storedMessages(sql, account);
    assert.deepEqual(rows.map((r) => r.message_id), [recentId]);
    assert.equal(rows[0].sent_at?.getTime(), recentSeconds * 1000);
    assert.equal(await memorySize(instance.handler, MESSAGE_URL), 1, "one claim: the stored one");
  } finally {
    await sql.end();
    await instance.close();
  }
});

Deno.test("replay: the message webhook refuses a Standard Webhooks delivery 6 minutes old", async () => {
  const sql = sqlClient();
  const instance = buildMessageWebhook();
  const account = ex.phoneNumberId();
  const body = JSON.stringify(ex.metaWebhook(account, [{
    messages: [ex.metaMessage({ id: `wamid.${ex.messageId()}`, from: ex.phoneDigits() })],
  }]));
  try {
    const replay = await callHandler(
      instance.handler,
      new Request(MESSAGE_URL, {
        method: "POST",
        body,
        headers: standardHeadersAged(body, 6 * 60),
      }),
    );
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error, "unauthorized");
    assert.deepEqual(await storedMessages(sql, account), []);
  } finally {
    await sql.end();
    await instance.close();
  }
});
