/**
 * whatsapp-message-webhook in-process against the real database (and Redis where named): one
 * stored message and one Realtime event per real message, statuses only forward, every format.
 */
import assert from "node:assert/strict";
import { startUpstashRestServer } from "../scripts/lib/upstash_rest_server.ts";
import { startPgCountingProxy } from "../bench/lib/pg_counting_proxy.ts";
import { databaseUrl, redisUrl, sqlClient } from "./support/env.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";
import { startTcpForwarder } from "./support/tcp_forwarder.ts";
import {
  buildMessageWebhook,
  buildMessageWebhookWithIdempotency,
  callHandler,
  jsonDelivery,
  MESSAGE_ENV,
  MESSAGE_URL,
  twilioDelivery,
} from "./support/message_webhook.ts";
import * as ex from "./fixtures/message_examples.ts";

type Handler = (request: Request) => Promise<Response>;

async function messageRows(sql: ReturnType<typeof sqlClient>, account: string) {
  return [
    ...(await sql<
      {
        message_id: string;
        chat: string | null;
        sender: string | null;
        direction: string;
        type: string | null;
        body: string | null;
        status: string | null;
        error_code: string | null;
        callback_data: string | null;
      }[]
    >`select message_id, chat, sender, direction, type, body, status, error_code, callback_data
      from public.whatsapp_messages where account = ${account} order by message_id`),
  ];
}

async function withRedis<T>(run: (env: Record<string, string>) => Promise<T>): Promise<T> {
  const endpoint = await startUpstashRestServer({ redisUrl: redisUrl(), token: "tok" });
  try {
    return await run({
      UPSTASH_REDIS_REST_URL: endpoint.url,
      UPSTASH_REDIS_REST_TOKEN: "tok",
      DEDUP_KEY_PREFIX: `t${crypto.randomUUID().slice(0, 8)}`,
    });
  } finally {
    await endpoint.close();
  }
}

Deno.test("each format: the same message from two sessions to two instances → one insert", async (t) => {
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const a = buildMessageWebhook();
  const b = buildMessageWebhook();
  const customer = ex.phoneDigits();
  const call = (h: Handler, r: Request) => callHandler(h, r);
  try {
    await t.step("meta", async () => {
      const account = ex.phoneNumberId();
      const id = `wamid.${ex.messageId("HBgM")}`;
      const payload = ex.metaWebhook(account, [{
        contacts: [{ profile: { name: "Kerry" }, wa_id: customer }],
        messages: [ex.metaMessage({ id, from: customer })],
      }]);
      const [r1, r2] = await Promise.all([
        call(a.handler, await jsonDelivery(payload, "meta")),
        call(b.handler, await jsonDelivery(payload, "meta")),
      ]);
      assert.deepEqual([r1.status, r2.status], [200, 200]);
      const rows = await messageRows(sql, account);
      assert.equal(rows.length, 1);
      assert.deepEqual(
        [rows[0].chat, rows[0].sender, rows[0].direction, rows[0].type, rows[0].body],
        [`+${customer}`, `+${customer}`, "in", "text", "Hello there"],
      );
      assert.equal((await feed.changes(id)).length, 1);
    });

    await t.step("twilio", async () => {
      const business = ex.phoneDigits();
      const sid = `SM${crypto.randomUUID().replaceAll("-", "")}`;
      const form = ex.twilioIncoming({ sid, from: customer, to: business, body: "Oi" });
      const [r1, r2] = await Promise.all([
        call(a.handler, twilioDelivery(form)),
        call(b.handler, twilioDelivery(form)),
      ]);
      assert.deepEqual([r1.status, r2.status], [200, 200]);
      assert.match(String(r1.body), /<Response>/);
      assert.equal(r1.headers.get("content-type"), "text/xml; charset=utf-8");
      const rows = await messageRows(sql, `+${business}`);
      assert.deepEqual(rows.map((r) => [r.message_id, r.chat, r.body]), [[
        sid,
        `+${customer}`,
        "Oi",
      ]]);
      assert.equal((await feed.changes(sid)).length, 1);
    });

    await t.step("evolution: two instances of one number", async () => {
      const business = ex.phoneDigits();
      const id = ex.messageId();
      const payload = (instance: string) =>
        ex.evolutionUpsert({
          instance,
          sender: `${business}@s.whatsapp.net`,
          id,
          remoteJid: `${customer}@s.whatsapp.net`,
        });
      const [r1, r2] = await Promise.all([
        call(a.handler, await jsonDelivery(payload("sales-1"), "bearer")),
        call(b.handler, await jsonDelivery(payload("sales-2"), "bearer")),
      ]);
      assert.deepEqual([r1.status, r2.status], [200, 200]);
      assert.equal((await messageRows(sql, `+${business}`)).length, 1);
      assert.equal((await feed.changes(id)).length, 1);
    });

    await t.step("waha: message and message.any of two sessions; serialised ids", async () => {
      const business = ex.phoneDigits();
      const id = ex.messageId();
      const delivery = (session: string, event: string) =>
        ex.wahaMessage({
          session,
          event,
          me: `${business}@c.us`,
          id,
          from: `${customer}@c.us`,
          to: `${business}@c.us`,
        });
      const results = await Promise.all([
        call(a.handler, await jsonDelivery(delivery("s1", "message"), "waha")),
        call(b.handler, await jsonDelivery(delivery("s2", "message"), "waha")),
        call(a.handler, await jsonDelivery(delivery("s1", "message.any"), "waha")),
      ]);
      assert.deepEqual(results.map((r) => r.status), [200, 200, 200]);
      const rows = await messageRows(sql, `+${business}`);
      assert.deepEqual(rows.map((r) => r.message_id), [id], "false_<chat>_<id> → <id>");
      assert.equal((await feed.changes(id)).length, 1);
    });

    await t.step(
      "one message seen through Evolution and WAHA of one number → one row",
      async () => {
        const business = ex.phoneDigits();
        const id = ex.messageId();
        await call(
          a.handler,
          await jsonDelivery(
            ex.evolutionUpsert({
              instance: "evo",
              sender: `${business}@s.whatsapp.net`,
              id,
              remoteJid: `${customer}@s.whatsapp.net`,
            }),
            "bearer",
          ),
        );
        const waha = await call(
          b.handler,
          await jsonDelivery(
            ex.wahaMessage({
              session: "w",
              me: `${business}@c.us`,
              id,
              from: `${customer}@c.us`,
              to: `${business}@c.us`,
            }),
            "waha",
          ),
        );
        assert.equal(waha.body.results[0].outcome, "unchanged");
        assert.equal((await messageRows(sql, `+${business}`)).length, 1);
      },
    );

    await t.step("two numbers in one group each keep their copy", async () => {
      const [n1, n2] = [ex.phoneDigits(), ex.phoneDigits()];
      const id = ex.messageId();
      for (const business of [n1, n2]) {
        const r = await call(
          a.handler,
          await jsonDelivery(
            ex.evolutionUpsert({
              instance: business,
              sender: `${business}@s.whatsapp.net`,
              id,
              remoteJid: "120363025246125486@g.us",
              participant: `${customer}@s.whatsapp.net`,
            }),
            "bearer",
          ),
        );
        assert.equal(r.body.results[0].outcome, "applied");
      }
      for (const business of [n1, n2]) {
        const rows = await messageRows(sql, `+${business}`);
        assert.deepEqual(
          rows.map((r) => [r.chat, r.sender]),
          [["120363025246125486@g.us", `+${customer}`]],
        );
      }
    });
  } finally {
    await feed.close();
    await sql.end();
    await a.close();
    await b.close();
  }
});

Deno.test("race: 20 identical deliveries at once across 3 instances → 1 row, 1 insert", async () => {
  for (const redis of [false, true]) {
    const run = async (env: Record<string, string>) => {
      const sql = sqlClient();
      const feed = await RealtimeChangeFeed.open(sql);
      const instances = [
        buildMessageWebhook(env),
        buildMessageWebhook(env),
        buildMessageWebhook(env),
      ];
      const account = ex.phoneNumberId();
      const id = `wamid.${ex.messageId("HBgM")}`;
      const payload = ex.metaWebhook(account, [{
        messages: [ex.metaMessage({ id, from: ex.phoneDigits() })],
      }]);
      try {
        const results = await Promise.all(
          Array.from(
            { length: 20 },
            async (_, i) =>
              callHandler(instances[i % 3].handler, await jsonDelivery(payload, "meta")),
          ),
        );
        assert.ok(results.every((r) => r.status === 200), `redis=${redis}`);
        const outcomes = results.map((r) => r.body.results[0].outcome);
        assert.equal(outcomes.filter((o) => o === "applied").length, 1, outcomes.join());
        assert.equal((await messageRows(sql, account)).length, 1);
        assert.equal((await feed.changes(id)).length, 1, `redis=${redis}`);
      } finally {
        await feed.close();
        await sql.end();
        for (const instance of instances) await instance.close();
      }
    };
    if (redis) await withRedis(run);
    else await run({});
  }
});

Deno.test("failure: the database failing after the claim → 503; the retry stores it once", async () => {
  const port = Number(new URL(databaseUrl()).port);
  const forwarder = startTcpForwarder(port);
  const url = new URL(databaseUrl());
  url.port = String(forwarder.port);
  await withRedis(async (env) => {
    const instance = buildMessageWebhook({
      ...env,
      SUPABASE_DB_URL: url.href,
      DB_TIMEOUT_MS: "2000",
    });
    const sql = sqlClient();
    const feed = await RealtimeChangeFeed.open(sql);
    const account = ex.phoneNumberId();
    const id = `wamid.${ex.messageId("HBgM")}`;
    const payload = ex.metaWebhook(account, [{
      messages: [ex.metaMessage({ id, from: ex.phoneDigits() })],
    }]);
    try {
      forwarder.stop();
      const down = await callHandler(instance.handler, await jsonDelivery(payload, "meta"));
      assert.equal(down.status, 503);
      assert.equal(down.body.error, "database_unavailable");
      assert.equal(down.headers.get("retry-after"), "5");
      forwarder.start();
      const retry = await callHandler(instance.handler, await jsonDelivery(payload, "meta"));
      assert.equal(retry.status, 200);
      assert.equal(retry.body.results[0].outcome, "applied");
      const again = await callHandler(instance.handler, await jsonDelivery(payload, "meta"));
      assert.equal(again.body.results[0].outcome, "duplicate");
      assert.equal((await messageRows(sql, account)).length, 1);
      assert.equal((await feed.changes(id)).length, 1);
    } finally {
      forwarder.stop();
      await feed.close();
      await sql.end();
      await instance.close();
    }
  });
});

Deno.test("meta batch: several messages and statuses in one webhook → one database round trip", async () => {
  const target = Number(new URL(databaseUrl()).port);
  const proxy = startPgCountingProxy(target);
  const instance = buildMessageWebhook({ SUPABASE_DB_URL: proxy.urlFor(databaseUrl()) });
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const account = ex.phoneNumberId();
  const customer = ex.phoneDigits();
  const ids = Array.from({ length: 4 }, () => `wamid.${ex.messageId("HBgM")}`);
  try {
    // Warm the pool (connection set-up is counted apart from round trips, but be explicit).
    await callHandler(
      instance.handler,
      await jsonDelivery(
        ex.metaWebhook(account, [{
          messages: [ex.metaMessage({ id: `wamid.${ex.messageId()}`, from: customer })],
        }]),
        "meta",
      ),
    );
    const before = proxy.stats.roundTrips;
    const payload = ex.metaWebhook(account, [
      {
        messages: [
          ex.metaMessage({ id: ids[0], from: customer }),
          ex.metaMessage({ id: ids[1], from: customer }),
        ],
      },
      {
        statuses: [
          ex.metaStatus({ id: ids[2], status: "sent", recipient: customer, callbackData: "r-1" }),
          ex.metaStatus({ id: ids[3], status: "delivered", recipient: customer }),
          ex.metaStatus({ id: ids[2], status: "read", recipient: customer }),
        ],
      },
    ]);
    const result = await callHandler(instance.handler, await jsonDelivery(payload, "meta"));
    assert.equal(result.status, 200);
    assert.equal(proxy.stats.roundTrips - before, 1, "one database round trip");
    assert.deepEqual(result.body.results.map((r: { outcome: string }) => r.outcome), [
      "applied",
      "applied",
      "applied",
      "applied",
      "applied",
    ]);
    const rows = await messageRows(sql, account);
    const byId = new Map(rows.map((r) => [r.message_id, r]));
    assert.equal(byId.get(ids[2])?.status, "read");
    assert.equal(byId.get(ids[2])?.callback_data, "r-1");
    assert.equal(byId.get(ids[2])?.direction, "out");
    assert.equal(byId.get(ids[3])?.status, "delivered");
    // The same batch again: every item is a copy, no row changes.
    const again = await callHandler(instance.handler, await jsonDelivery(payload, "meta"));
    assert.ok(again.body.results.every((r: { outcome: string }) => r.outcome !== "applied"));
    for (const id of ids) assert.ok((await feed.changes(id)).length >= 1);
    const total = (await Promise.all(ids.map((id) => feed.changes(id)))).flat().length;
    assert.equal(total, 5, "2 inserts + 2 status inserts + 1 forward update");
  } finally {
    await feed.close();
    await sql.end();
    await instance.close();
    proxy.close();
  }
});

Deno.test("statuses move only forward: read, delivered, read, sent → read; failed after delivered ignored", async () => {
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const a = buildMessageWebhook();
  const b = buildMessageWebhook();
  const account = ex.phoneNumberId();
  const customer = ex.phoneDigits();
  const id = `wamid.${ex.messageId("HBgM")}`;
  const status = async (h: Handler, name: string, errorCode?: number) =>
    (await callHandler(
      h,
      await jsonDelivery(
        ex.metaWebhook(account, [{
          statuses: [ex.metaStatus({ id, status: name, recipient: customer, errorCode })],
        }]),
        "meta",
      ),
    )).body.results[0].outcome;
  try {
    assert.equal(await status(a.handler, "delivered"), "applied");
    assert.equal(await status(b.handler, "read"), "applied");
    assert.equal(await status(a.handler, "delivered"), "duplicate");
    assert.equal(await status(b.handler, "read"), "duplicate");
    assert.equal(await status(a.handler, "sent"), "stale");
    assert.equal(await status(b.handler, "failed", 131026), "stale");
    const [row] = await messageRows(sql, account);
    assert.equal(row.status, "read");
    assert.equal(row.error_code, null);
    assert.deepEqual((await feed.changes(id)).map((c) => c.op), ["INSERT", "UPDATE"]);
  } finally {
    await feed.close();
    await sql.end();
    await a.close();
    await b.close();
  }
});

Deno.test("a status that overtook its message: the message fills the row, the status stays", async () => {
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const instance = buildMessageWebhook();
  const business = ex.phoneDigits();
  const customer = ex.phoneDigits();
  const id = ex.messageId();
  try {
    const ack = ex.wahaAck({
      session: "s",
      me: `${business}@c.us`,
      id,
      to: `${customer}@c.us`,
      ack: 3,
    });
    assert.equal(
      (await callHandler(instance.handler, await jsonDelivery(ack, "waha"))).body.results[0]
        .outcome,
      "applied",
    );
    const message = ex.wahaMessage({
      session: "s",
      event: "message.any",
      me: `${business}@c.us`,
      id,
      from: `${business}@c.us`,
      to: `${customer}@c.us`,
      fromMe: true,
      body: "Sent from the phone",
    });
    const first = await callHandler(instance.handler, await jsonDelivery(message, "waha"));
    assert.equal(first.body.results[0].outcome, "applied");
    const copy = await callHandler(
      buildMessageWebhook().handler,
      await jsonDelivery(message, "waha"),
    );
    assert.equal(copy.body.results[0].outcome, "unchanged");
    const [row] = await messageRows(sql, `+${business}`);
    assert.deepEqual([row.status, row.direction, row.body, row.chat], [
      "read",
      "out",
      "Sent from the phone",
      `+${customer}`,
    ]);
    assert.deepEqual((await feed.changes(id)).map((c) => c.op), ["INSERT", "UPDATE"]);
  } finally {
    await feed.close();
    await sql.end();
    await instance.close();
  }
});

Deno.test("one malformed message among good ones: the good ones are stored, the bad one reported", async () => {
  const sql = sqlClient();
  const instance = buildMessageWebhook();
  const account = ex.phoneNumberId();
  const customer = ex.phoneDigits();
  const good = [`wamid.${ex.messageId()}`, `wamid.${ex.messageId()}`, `wamid.${ex.messageId()}`];
  try {
    const payload = ex.metaWebhook(account, [{
      messages: [
        ex.metaMessage({ id: good[0], from: customer }),
        { from: customer, timestamp: "1", type: "text", text: { body: "no id" } },
        { ...ex.metaMessage({ id: good[1], from: customer }), unknown_field: { deep: [1] } },
        // A sender that is not a possible phone number is kept as given, never refused.
        { ...ex.metaMessage({ id: good[2], from: "12" }) },
      ],
      statuses: [{ ...ex.metaStatus({ id: good[0], status: "deleted", recipient: customer }) }],
    }]);
    const result = await callHandler(instance.handler, await jsonDelivery(payload, "meta"));
    assert.equal(result.status, 200);
    assert.deepEqual(result.body.results.map((r: { outcome: string }) => r.outcome), [
      "applied",
      "rejected",
      "applied",
      "applied",
      "ignored",
    ]);
    assert.equal(result.body.results[1].path, "entry.0.changes.0.value.messages.1");
    assert.match(result.body.results[1].reason, /id is required/);
    assert.deepEqual(
      (await messageRows(sql, account)).map((r) => r.message_id).sort(),
      [...good].sort(),
    );
  } finally {
    await sql.end();
    await instance.close();
  }
});

Deno.test("Meta's subscription handshake: the challenge with the right token, 403 otherwise", async () => {
  const instance = buildMessageWebhook();
  const unconfigured = buildMessageWebhook({ META_VERIFY_TOKEN: "" });
  const url = (token: string) =>
    `${MESSAGE_URL}?hub.mode=subscribe&hub.verify_token=${
      encodeURIComponent(token)
    }&hub.challenge=1158201444`;
  try {
    const ok = await callHandler(instance.handler, new Request(url(MESSAGE_ENV.META_VERIFY_TOKEN)));
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 1158201444);
    assert.equal(ok.headers.get("content-type"), "text/plain; charset=utf-8");
    const wrong = await callHandler(instance.handler, new Request(url("nope")));
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.error, "forbidden");
    assert.equal((await callHandler(unconfigured.handler, new Request(url("")))).status, 403);
    const health = await callHandler(instance.handler, new Request(`${MESSAGE_URL}/health`));
    assert.equal(health.body.function, "whatsapp-message-webhook");
    assert.equal(health.body.maxBodyBytes, 4 * 1024 * 1024);
  } finally {
    await instance.close();
    await unconfigured.close();
  }
});

Deno.test("bad input: 4xx JSON error, nothing written, no claim taken", async () => {
  const sql = sqlClient();
  const instance = buildMessageWebhook();
  const account = ex.phoneNumberId();
  const id = `wamid.${ex.messageId()}`;
  const valid = ex.metaWebhook(account, [{
    messages: [ex.metaMessage({ id, from: ex.phoneDigits() })],
  }]);
  const validBody = JSON.stringify(valid);
  const business = ex.phoneDigits();
  const twilioForm = ex.twilioIncoming({
    sid: `SM${crypto.randomUUID().replaceAll("-", "")}`,
    from: ex.phoneDigits(),
    to: business,
  });
  try {
    const cases: [string, Request, number, string][] = [
      ["malformed JSON", await jsonDelivery("{not json", "meta"), 400, "malformed_json"],
      ["unknown format", await jsonDelivery({ hello: "world" }, "meta"), 400, "unknown_format"],
      [
        "unknown forced format",
        await jsonDelivery(valid, "meta", `${MESSAGE_URL}?format=telegram`),
        400,
        "unknown_format",
      ],
      [
        "a message without an id",
        await jsonDelivery(
          ex.metaWebhook(account, [{ messages: [{ from: "5511999999999", type: "text" }] }]),
          "meta",
        ),
        400,
        "invalid_payload",
      ],
      [
        "bad envelope",
        await jsonDelivery({ object: "whatsapp_business_account", entry: "x" }, "meta"),
        400,
        "invalid_payload",
      ],
      [
        "signature for another body",
        new Request(MESSAGE_URL, {
          method: "POST",
          body: validBody,
          headers: await (async () => {
            const h = await jsonDelivery(validBody + " ", "meta");
            return Object.fromEntries(h.headers);
          })(),
        }),
        401,
        "unauthorized",
      ],
      [
        "missing signature",
        new Request(MESSAGE_URL, { method: "POST", body: validBody }),
        401,
        "unauthorized",
      ],
      [
        "twilio: wrong token",
        twilioDelivery(twilioForm, MESSAGE_URL, "another-token"),
        401,
        "unauthorized",
      ],
      [
        "twilio: signed for another URL",
        twilioDelivery(
          twilioForm,
          MESSAGE_URL,
          undefined,
          "https://example.test/other",
        ),
        401,
        "unauthorized",
      ],
      [
        "malformed form",
        new Request(MESSAGE_URL, {
          method: "POST",
          body: new Uint8Array([0xff, 0xfe, 0x3d]),
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": "AAAA",
          },
        }),
        400,
        "malformed_form",
      ],
      [
        "PUT",
        new Request(MESSAGE_URL, { method: "PUT", body: validBody }),
        405,
        "method_not_allowed",
      ],
    ];
    for (const [name, request, status, code] of cases) {
      const result = await callHandler(instance.handler, request);
      assert.equal(result.status, status, `${name}: ${JSON.stringify(result.body)}`);
      assert.equal(result.body.error, code, name);
      assert.equal(result.body.success, false, name);
    }
    const limited = buildMessageWebhook({ MESSAGE_MAX_BODY_BYTES: "2048" });
    const big = await callHandler(
      limited.handler,
      await jsonDelivery({ ...valid, pad: "x".repeat(4096) }, "meta"),
    );
    assert.equal(big.status, 413);
    await limited.close();
    assert.deepEqual(await messageRows(sql, account), []);
    assert.deepEqual(await messageRows(sql, `+${business}`), []);
    const health = await callHandler(instance.handler, new Request(`${MESSAGE_URL}/health`));
    assert.equal(health.body.tiers.memory.size, 0, "no claim taken");
  } finally {
    await sql.end();
    await instance.close();
  }
});

Deno.test("a 3 MB Cloud API batch is accepted (the body limit is 4 MiB)", async () => {
  const sql = sqlClient();
  const instance = buildMessageWebhook();
  const account = ex.phoneNumberId();
  const customer = ex.phoneDigits();
  try {
    const messages = Array.from(
      { length: 1000 },
      () =>
        ex.metaMessage({ id: `wamid.${ex.messageId()}`, from: customer, body: "y".repeat(3000) }),
    );
    const payload = ex.metaWebhook(account, [{ messages }]);
    const request = await jsonDelivery(payload, "meta");
    assert.ok(Number(JSON.stringify(payload).length) > 3_000_000);
    const result = await callHandler(instance.handler, request);
    assert.equal(result.status, 200);
    assert.equal((await messageRows(sql, account)).length, 1000);
  } finally {
    await sql.end();
    await instance.close();
  }
});

Deno.test("Idempotency-Key: a keyed retry of a message webhook is replayed byte for byte", async () => {
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const instance = buildMessageWebhookWithIdempotency();
  const account = ex.phoneNumberId();
  const id = `wamid.${ex.messageId()}`;
  const payload = ex.metaWebhook(account, [{
    messages: [ex.metaMessage({ id, from: ex.phoneDigits() })],
  }]);
  const key = crypto.randomUUID();
  const keyed = async (body: unknown) => {
    const request = await jsonDelivery(body, "meta");
    request.headers.set("idempotency-key", key);
    return await instance.handler(request);
  };
  try {
    const first = await keyed(payload);
    const firstText = await first.text();
    assert.equal(first.status, 200);
    const replay = await keyed(payload);
    assert.equal(replay.headers.get("idempotent-replayed"), "true");
    assert.equal(await replay.text(), firstText);
    const other = await keyed({ ...payload, entry: [] });
    assert.equal(other.status, 422);
    await other.body?.cancel();
    assert.equal((await feed.changes(id)).length, 1);
    const health = await (await instance.handler(new Request(`${MESSAGE_URL}/health`))).json();
    assert.equal(health.idempotency.enabled, true);
    // The replay came from this instance's cache; it is still counted for the statistics.
    await instance.close();
    const [row] = await sql`select replay_count from public.webhook_idempotency
      where key = ${key} and scope like 'whatsapp-message-webhook:%'`;
    assert.equal(row.replay_count, 1);
  } finally {
    await feed.close();
    await sql.end();
    await instance.close();
  }
});

Deno.test("review: odd text never becomes a 503; statuses without a status, numeric statuses, cleared errors", async () => {
  const sql = sqlClient();
  const instance = buildMessageWebhook();
  const account = ex.phoneNumberId();
  const customer = ex.phoneDigits();
  const business = ex.phoneDigits();
  try {
    // A NUL and a lone surrogate in stored text, next to a good message: all stored, 200.
    const ids = [`wamid.${ex.messageId()}`, `wamid.${ex.messageId()}`, `wamid.${ex.messageId()}`];
    const odd = ex.metaWebhook(account, [{
      messages: [
        ex.metaMessage({ id: ids[0], from: customer, body: "bad\u0000body" }),
        ex.metaMessage({ id: ids[1], from: customer, body: "half \ud800 pair" }),
        { ...ex.metaMessage({ id: ids[2], from: customer }), timestamp: "not a time" },
      ],
      statuses: [{
        ...ex.metaStatus({ id: ids[0], status: "read", recipient: customer }),
        biz_opaque_callback_data: "cb\u0000",
      }],
    }]);
    // A change without a value (another field) beside the good one.
    odd.entry[0].changes.push({ field: "account_alerts" } as never);
    const result = await callHandler(instance.handler, await jsonDelivery(odd, "meta"));
    assert.equal(result.status, 200, JSON.stringify(result.body));
    const rows = await messageRows(sql, account);
    assert.equal(rows.length, 3, "stored, with the time of receipt where the timestamp is bad");
    assert.equal(rows.find((r) => r.message_id === ids[0])?.body, "badbody");

    // Evolution messages.update without a status (an edit) is ignored; numeric statuses map.
    const id = ex.messageId();
    const sender = `${business}@s.whatsapp.net`;
    const edit = await callHandler(
      instance.handler,
      await jsonDelivery({
        event: "messages.update",
        instance: "i",
        sender,
        data: { keyId: id, remoteJid: `${customer}@s.whatsapp.net`, fromMe: true },
      }, "bearer"),
    );
    assert.equal(edit.status, 200);
    assert.equal(edit.body.ignored, true);
    const numeric = await callHandler(
      instance.handler,
      await jsonDelivery({
        event: "messages.update",
        instance: "i",
        sender,
        data: {
          key: { id, remoteJid: `${customer}@s.whatsapp.net`, fromMe: true },
          update: { status: 4 },
        },
      }, "bearer"),
    );
    assert.equal(numeric.body.results[0].status, "read");

    // A failure's error code is cleared by a later status that proves delivery.
    const sentId = `wamid.${ex.messageId()}`;
    for (const [status, errorCode] of [["sent"], ["failed", 131026], ["delivered"]] as const) {
      await callHandler(
        instance.handler,
        await jsonDelivery(
          ex.metaWebhook(account, [{
            statuses: [ex.metaStatus({ id: sentId, status, recipient: customer, errorCode })],
          }]),
          "meta",
        ),
      );
    }
    const [row] = (await messageRows(sql, account)).filter((r) => r.message_id === sentId);
    assert.deepEqual([row.status, row.error_code], ["delivered", null]);

    // WAHA without `me`: the account is the receiving side of the message.
    const wahaId = ex.messageId();
    const waha = ex.wahaMessage({
      session: "s",
      me: `${business}@c.us`,
      id: wahaId,
      from: `${customer}@c.us`,
      to: `${business}@c.us`,
    });
    const noMe = await callHandler(
      instance.handler,
      await jsonDelivery({ ...waha, me: undefined }, "waha"),
    );
    assert.equal(noMe.body.results[0].outcome, "applied");
    assert.ok((await messageRows(sql, `+${business}`)).some((r) => r.message_id === wahaId));

    // The handshake: another mode is forbidden, a missing challenge is a 400.
    const mode = await callHandler(
      instance.handler,
      new Request(
        `${MESSAGE_URL}?hub.mode=unsubscribe&hub.verify_token=${MESSAGE_ENV.META_VERIFY_TOKEN}&hub.challenge=1`,
      ),
    );
    assert.equal(mode.status, 403);
    const noChallenge = await callHandler(
      instance.handler,
      new Request(
        `${MESSAGE_URL}?hub.mode=subscribe&hub.verify_token=${MESSAGE_ENV.META_VERIFY_TOKEN}`,
      ),
    );
    assert.equal(noChallenge.status, 400);
  } finally {
    await sql.end();
    await instance.close();
  }
});
