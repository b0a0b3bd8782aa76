/**
 * No false duplicates (issue 16, item 4): a corpus of 560 distinct look-alike events
 * (tests/fixtures/lookalike_corpus.ts) through both webhooks, in-process instances with the Map
 * and Redis (behind the local Upstash endpoint) sharing the real database: none is suppressed.
 * Every event is applied, every row is stored, and the replication feed has one row change per
 * event. The instances log at debug level into a capture: no "duplicate suppressed" line; a real
 * copy, by contrast, logs one with its rule, its tier and a key hash, never a phone number.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import type { Logger, LogLevel } from "../supabase/functions/_shared/core/log.ts";
import { parseMessageSettings } from "../supabase/functions/_shared/messages/config.ts";
import { createMembershipWebhookFromConfig } from "../supabase/functions/whatsapp-membership-webhook/handler.ts";
import { createMessageWebhookFromConfig } from "../supabase/functions/whatsapp-message-webhook/handler.ts";
import { startUpstashRestServer } from "../scripts/lib/upstash_rest_server.ts";
import { type CorpusEvent, lookalikeCorpus } from "./fixtures/lookalike_corpus.ts";
import { databaseUrl, redisUrl, sqlClient } from "./support/env.ts";
import { MESSAGE_ENV, MESSAGE_URL } from "./support/message_webhook.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";
import { SECRETS, signedHeaders } from "./support/signing.ts";

const MEMBERSHIP_URL = "http://127.0.0.1/whatsapp-membership-webhook";
const ROUNDS = 20;

/** One captured log line. */
interface Line {
  level: LogLevel;
  msg: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps every line (debug included) for the test to read. */
function captureLogger(lines: Line[]): Logger {
  const write = (level: LogLevel) => (msg: string, fields: Record<string, unknown> = {}) =>
    lines.push({ level, msg, fields });
  return {
    enabled: () => true,
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
  };
}

type Handler = (request: Request) => Promise<Response>;

interface Instance {
  membership: Handler;
  message: Handler;
  close: () => Promise<void>;
}

function buildInstance(redisEnv: Record<string, string>, logger: Logger): Instance {
  const values = { SUPABASE_DB_URL: databaseUrl(), ...MESSAGE_ENV, ...SECRETS, ...redisEnv };
  const membership = createMembershipWebhookFromConfig(parseConfig(values), logger);
  const message = createMessageWebhookFromConfig(
    parseConfig(values),
    parseMessageSettings(values),
    logger,
  );
  return {
    membership: membership.handler,
    message: message.handler,
    close: async () => {
      await membership.close();
      await message.close();
    },
  };
}

async function send(instance: Instance, event: CorpusEvent) {
  const body = JSON.stringify(event.payload);
  const membership = event.webhook === "membership";
  const request = new Request(membership ? MEMBERSHIP_URL : MESSAGE_URL, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(await signedHeaders(membership ? "generic" : "meta", body)),
    },
    body,
  });
  const response = await (membership ? instance.membership : instance.message)(request);
  const text = await response.text();
  assert.equal(response.status, 200, `#${event.n} ${event.kind}: ${text}`);
  return JSON.parse(text) as { results: { outcome: string }[] };
}

/** Runs `body` with Redis behind a fresh Upstash endpoint and key prefix. */
async function withRedis(body: (env: Record<string, string>) => Promise<void>) {
  const endpoint = await startUpstashRestServer({ redisUrl: redisUrl(), token: "tok" });
  try {
    await body({
      UPSTASH_REDIS_REST_URL: endpoint.url,
      UPSTASH_REDIS_REST_TOKEN: "tok",
      DEDUP_KEY_PREFIX: `lookalike${crypto.randomUUID().slice(0, 8)}`,
    });
  } finally {
    await endpoint.close();
  }
}

const suppressed = (lines: Line[]) => lines.filter((l) => l.msg === "duplicate suppressed");

Deno.test("lookalikes: the corpus is deterministic, distinct, and at least 500 events", () => {
  const base = Date.UTC(2026, 11, 4, 12, 0, 0);
  const corpus = lookalikeCorpus(4242, ROUNDS, base);
  assert.ok(corpus.length >= 500, `${corpus.length} events`);
  assert.deepEqual(lookalikeCorpus(4242, ROUNDS, base), corpus);
  const bodies = new Set(corpus.map((e) => JSON.stringify(e.payload)));
  assert.equal(bodies.size, corpus.length, "every event is distinct");
});

Deno.test("lookalikes: 0 of the corpus suppressed, through both webhooks with Redis", async () => {
  const tag = (Date.now() % 90_000_000) + 10_000_000;
  const corpus = lookalikeCorpus(tag, ROUNDS, Math.floor(Date.now() / 1000) * 1000 - 10 * 60_000);
  const lines: Line[] = [];
  const logger = captureLogger(lines);
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  try {
    await withRedis(async (redisEnv) => {
      const outcomes: string[] = [];
      // Two instances before the restart, two new ones (empty memory, same Redis) after it.
      for (const phase of [false, true]) {
        const instances = [buildInstance(redisEnv, logger), buildInstance(redisEnv, logger)];
        try {
          for (const event of corpus.filter((e) => e.afterRestart === phase)) {
            const { results } = await send(instances[event.n % 2], event);
            assert.equal(results.length, 1, `#${event.n} ${event.kind}`);
            outcomes[event.n] = results[0].outcome;
          }
        } finally {
          await Promise.all(instances.map((i) => i.close()));
        }
      }
      const notApplied = corpus.filter((e) => outcomes[e.n] !== "applied")
        .map((e) => `#${e.n} ${e.kind}: ${outcomes[e.n]}`);
      assert.deepEqual(notApplied, [], "every look-alike event is applied");
    });
    assert.deepEqual(suppressed(lines), [], "no suppression logged");

    // Every row is stored, and each event is exactly one row change on the replication feed.
    const marker = String(tag).padStart(8, "0");
    const members = await sql<{ row: string }[]>`
      select group_jid || '|' || phone as row from public.whatsapp_group_members
      where group_jid like ${`120363${marker}%`}`;
    const messages = await sql<{ row: string }[]>`
      select account || '|' || message_id as row from public.whatsapp_messages
      where account like ${`7${marker}%`}`;
    const stored = new Set([...members, ...messages].map((r) => r.row));
    assert.deepEqual(stored, new Set(corpus.map((e) => e.row)));
    const changes = await feed.changes(marker);
    assert.equal(changes.length, corpus.length, "one row change per event");
  } finally {
    await feed.close();
    await sql.end();
  }
});

Deno.test("lookalikes: a real copy is suppressed and logged with its rule, tier and key hash", async () => {
  const tag = (Date.now() % 90_000_000) + 10_000_000;
  const corpus = lookalikeCorpus(tag, 1, Math.floor(Date.now() / 1000) * 1000 - 5 * 60_000);
  const join = corpus.find((e) => e.webhook === "membership")!;
  const message = corpus.find((e) => e.webhook === "message")!;
  const lines: Line[] = [];
  const logger = captureLogger(lines);
  await withRedis(async (redisEnv) => {
    for (const event of [join, message]) {
      const a = buildInstance(redisEnv, logger);
      const b = buildInstance(redisEnv, logger);
      try {
        assert.equal((await send(a, event)).results[0].outcome, "applied");
        // The same delivery again to the same instance (the Map), then to another (Redis).
        assert.equal((await send(a, event)).results[0].outcome, "duplicate");
        await a.close(); // waits for the Redis confirmation
        assert.equal((await send(b, event)).results[0].outcome, "duplicate");
      } finally {
        await b.close();
      }
    }
  });
  const logged = suppressed(lines);
  assert.deepEqual(logged.map((l) => [l.level, l.fields.tier, l.fields.kind]), [
    ["debug", "memory", "join"],
    ["debug", "redis", "join"],
    ["debug", "memory", "msg"],
    ["debug", "redis", "msg"],
  ]);
  assert.deepEqual(logged.map((l) => l.fields.rule), [
    "same key within the copy window, no other action of the subject between",
    "same key within the copy window, no other action of the subject between",
    "same key within the copy window",
    "same key within the copy window",
  ]);
  // The key hash tells one key from another; the line never holds a phone number or a body.
  assert.equal(logged[0].fields.key_hash, logged[1].fields.key_hash);
  assert.notEqual(logged[0].fields.key_hash, logged[2].fields.key_hash);
  assert.match(String(logged[0].fields.key_hash), /^[0-9a-f]{12}$/);
  const text = JSON.stringify(logged);
  for (const secret of [...text.matchAll(/[0-9]{9,}/g)].map((m) => m[0])) {
    assert.ok(!JSON.stringify(join.payload).includes(secret), `log holds ${secret}`);
  }
  assert.ok(!text.includes("On my way") && !text.includes("Hello"));
});
