/**
 * Issue 13's input findings, each as its own case: NULs in send-batch's query parameters never
 * reach the database (finding 4); a field of the wrong type where a list is expected is a 400
 * naming its path (finding 5 and the other lists); every 400 names a path; a field a function
 * does not use never refuses a delivery.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import { parseIdempotencyConfig } from "../supabase/functions/_shared/core/idempotency/config.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { cleanJson, cleanParam, cleanText } from "../supabase/functions/_shared/core/sanitize.ts";
import { createMembershipWebhookFromConfig } from "../supabase/functions/whatsapp-membership-webhook/handler.ts";
import { databaseUrl, groupRows, sqlClient, uniqueGroup } from "./support/env.ts";
import { SECRETS, signedHeaders } from "./support/signing.ts";
import { buildMessageWebhook, callHandler, jsonDelivery } from "./support/message_webhook.ts";
import { FakeWhatsAppProvider } from "./support/fake_whatsapp_provider.ts";
import { newUser } from "./support/jwt.ts";
import { call, phones, sendBatchHandler } from "./support/send_batch.ts";
import * as gateways from "./fixtures/gateway_examples.ts";
import * as ex from "./fixtures/message_examples.ts";

const MEMBERSHIP_URL = "http://127.0.0.1/whatsapp-membership-webhook";
const opts = { sanitizeResources: false, sanitizeOps: false };

function buildMembership() {
  const values = { SUPABASE_DB_URL: databaseUrl(), ...SECRETS };
  return createMembershipWebhookFromConfig(
    parseConfig(values),
    silentLogger,
    parseIdempotencyConfig(values),
  );
}

async function postMembership(
  handler: (request: Request) => Promise<Response>,
  payload: unknown,
  headers: Record<string, string> = {},
) {
  const body = typeof payload === "string" ? payload : JSON.stringify(payload);
  const response = await handler(
    new Request(MEMBERSHIP_URL, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        ...await signedHeaders("generic", body),
        ...headers,
      },
    }),
  );
  return { status: response.status, body: await response.json() };
}

/** A value of the wrong type where the example builders take a list. */
const notAList = (value: unknown) => value as unknown[];

// deno-lint-ignore no-explicit-any -- response bodies are read field by field
const paths = (body: any): string[] => body.issues.map((i: { path: string }) => i.path);

Deno.test("sanitiser: NULs removed, lone surrogates replaced, a cut never leaves half a pair", () => {
  assert.equal(cleanText("a\u0000b\u0000"), "ab");
  assert.equal(cleanText("x\ud800y\udfff"), "x\ufffdy\ufffd");
  assert.equal(cleanText("ok 🙂"), "ok 🙂");
  assert.equal(cleanText("ab🙂", 3), "ab\ufffd");
  assert.ok(cleanText("\u0000".repeat(10) + "x".repeat(10), 5) === "xxxxx");
  assert.deepEqual(cleanJson({ "k\u0000": ["v\u0000", 1, null, { n: "\ud800" }] }), {
    k: ["v", 1, null, { n: "\ufffd" }],
  });
  const query = new URLSearchParams("template=a%00b&language=%ED%A0%80");
  assert.equal(cleanParam(query, "template"), "ab");
  assert.equal(cleanParam(query, "language"), "\ufffd\ufffd\ufffd");
  assert.equal(cleanParam(query, "missing"), null);
});

Deno.test(
  "finding 4: NUL in ?template= or ?language= of a CSV create is cleaned, never a 500",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake);
    const sql = sqlClient();
    try {
      const user = await newUser();
      const csv = `phone,name\n${phones(2).join(",Ana\n")},Bo\n`;
      const created = await call(
        fn.handler,
        "POST",
        "?template=trip%00_reminder&language=en%00_US",
        user.jwt,
        csv,
        "text/csv",
      );
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const [batch] = await sql<{ message: { template: { name: string; language: string } } }[]>`
        select message from public.whatsapp_send_batches where id = ${created.body.batch_id}`;
      assert.equal(batch.message.template.name, "trip_reminder");
      assert.equal(batch.message.template.language, "en_US");

      // Nothing left once cleaned: a 400 naming the parameter, nothing written.
      const before = await sql`select count(*)::int as n from public.whatsapp_send_batches`;
      for (
        const [query, path] of [
          ["?template=%00", "message"],
          ["?template=x&language=%00", "language"],
          ["?message=%00%00", "message"],
        ]
      ) {
        const refused = await call(fn.handler, "POST", query, user.jwt, csv, "text/csv");
        assert.equal(refused.status, 400, `${query}: ${JSON.stringify(refused.body)}`);
        assert.equal(refused.body.error, "invalid_message");
        assert.ok(paths(refused.body).includes(path), `${query}: ${paths(refused.body)}`);
      }
      const after = await sql`select count(*)::int as n from public.whatsapp_send_batches`;
      assert.equal(after[0].n, before[0].n);
    } finally {
      await sql.end();
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test("finding 5: Meta value.messages or value.statuses not a list → 400 naming it", async () => {
  const sql = sqlClient();
  const instance = buildMessageWebhook();
  const account = ex.phoneNumberId();
  const customer = ex.phoneDigits();
  const good = ex.metaMessage({ id: `wamid.${ex.messageId()}`, from: customer });
  try {
    for (const list of ["messages", "statuses"]) {
      const webhook = ex.metaWebhook(account, [{ [list]: good }]);
      const refused = await callHandler(instance.handler, await jsonDelivery(webhook, "meta"));
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.error, "invalid_payload");
      assert.deepEqual(paths(refused.body), [`entry.0.changes.0.value.${list}`]);
    }
    const none = await sql`select 1 from public.whatsapp_messages where account = ${account}`;
    assert.equal(none.length, 0);

    // Next to a good change, the bad list is reported and the good message stored.
    const mixed = ex.metaWebhook(account, [{ messages: [good] }, {
      statuses: notAList({ id: "x" }),
    }]);
    const partial = await callHandler(instance.handler, await jsonDelivery(mixed, "meta"));
    assert.equal(partial.status, 200, JSON.stringify(partial.body));
    assert.deepEqual(partial.body.results.map((r: { outcome: string }) => r.outcome), [
      "applied",
      "rejected",
    ]);
    assert.equal(partial.body.results[1].path, "entry.0.changes.1.value.statuses");
  } finally {
    await sql.end();
    await instance.close();
  }
});

Deno.test("membership: a list of the wrong type is a 400 naming its path, nothing written", async () => {
  const { handler, close } = buildMembership();
  const sql = sqlClient();
  const group = uniqueGroup();
  const person = "919963064165@s.whatsapp.net";
  try {
    const cases: [string, unknown, string][] = [
      ["Meta entry", { object: "whatsapp_business_account", entry: { id: "1" } }, "entry"],
      [
        "Meta changes",
        { object: "whatsapp_business_account", entry: [{ id: "1", changes: { field: "x" } }] },
        "entry.0.changes",
      ],
      [
        "Meta groups",
        {
          object: "whatsapp_business_account",
          entry: [{ changes: [{ field: "group_participants_update", value: { groups: {} } }] }],
        },
        "entry.0.changes.0.value.groups",
      ],
      [
        "Baileys participants",
        { id: group, action: "add", participants: { id: person } },
        "participants",
      ],
      [
        "Evolution participants",
        {
          event: "group-participants.update",
          instance: "i1",
          data: { id: group, action: "add", participants: person },
        },
        "data.participants",
      ],
      [
        "WAHA participants",
        {
          event: "group.v2.participants",
          session: "default",
          payload: { group: { id: group }, type: "join", participants: { id: person } },
        },
        "payload.participants",
      ],
      [
        "whatsapp-web.js recipientIds",
        { chatId: group, type: "add", recipientIds: person },
        "recipientIds",
      ],
      [
        "generic participants",
        { event: "join", groupJid: group, participants: person },
        "participants",
      ],
    ];
    for (const [name, payload, path] of cases) {
      const refused = await postMembership(handler, payload);
      assert.equal(refused.status, 400, `${name}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.error, "invalid_payload", name);
      assert.ok(paths(refused.body).includes(path), `${name}: ${paths(refused.body)}`);
    }
    assert.deepEqual(await groupRows(sql, group), []);
  } finally {
    await sql.end();
    await close();
  }
});

Deno.test("fields a function does not use never refuse, whatever their type", async () => {
  const { handler, close } = buildMembership();
  const messages = buildMessageWebhook();
  const sql = sqlClient();
  const group = uniqueGroup();
  try {
    const delivery = {
      ...gateways.sessions.generic("s1", group, "join", [{ digits: "919963064165" }]),
      messages: { not: "a list" },
      statuses: "x",
      entry: 5,
      metadata: [],
    };
    const applied = await postMembership(handler, delivery);
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    assert.equal(applied.body.results[0].outcome, "applied");

    const account = ex.phoneNumberId();
    const webhook = ex.metaWebhook(account, [{
      messages: [ex.metaMessage({ id: `wamid.${ex.messageId()}`, from: ex.phoneDigits() })],
      contacts: notAList({ profile: "not a list" }),
    }]);
    (webhook.entry[0].changes as unknown[]).push({ field: "account_update", value: "text" });
    const stored = await callHandler(messages.handler, await jsonDelivery(webhook, "meta"));
    assert.equal(stored.status, 200, JSON.stringify(stored.body));
    assert.equal(stored.body.results[0].outcome, "applied");
  } finally {
    await sql.end();
    await messages.close();
    await close();
  }
});

Deno.test(
  "every 400 names a path: malformed bodies and invalid Idempotency-Keys",
  opts,
  async () => {
    const membership = buildMembership();
    const messages = buildMessageWebhook();
    const fake = FakeWhatsAppProvider.start();
    const sendBatch = sendBatchHandler(fake);
    try {
      const badJson = await postMembership(membership.handler, "{not json");
      assert.equal(badJson.status, 400);
      assert.deepEqual(paths(badJson.body), ["(body)"]);

      const badKey = await postMembership(
        membership.handler,
        gateways.sessions.generic("s1", uniqueGroup(), "join", [{ digits: "919963064165" }]),
        { "idempotency-key": "not a key" },
      );
      assert.equal(badKey.status, 400);
      assert.equal(badKey.body.error, "invalid_idempotency_key");
      assert.deepEqual(paths(badKey.body), ["Idempotency-Key"]);

      const badMessage = await callHandler(messages.handler, await jsonDelivery("{x", "meta"));
      assert.deepEqual(paths(badMessage.body), ["(body)"]);

      const user = await newUser();
      const badBatch = await call(sendBatch.handler, "POST", "", user.jwt, "{x");
      assert.equal(badBatch.status, 400);
      assert.deepEqual(paths(badBatch.body), ["(body)"]);
      const rootBatch = await call(sendBatch.handler, "POST", "", user.jwt, []);
      assert.equal(rootBatch.status, 400);
      assert.deepEqual(paths(rootBatch.body), ["(root)"]);
      const noPhones = await call(sendBatch.handler, "POST", "", user.jwt, {
        message: "Hi",
        recipients: [{ phone: "12" }, "x"],
      });
      assert.equal(noPhones.body.error, "no_valid_recipients");
      assert.deepEqual(paths(noPhones.body), ["recipients.0.phone", "recipients.1.phone"]);
      const noColumn = await call(
        sendBatch.handler,
        "POST",
        "?message=Hi",
        user.jwt,
        "name\nAna\n",
        "text/csv",
      );
      assert.equal(noColumn.body.error, "missing_phone_column");
      assert.deepEqual(paths(noColumn.body), ["header"]);
    } finally {
      await membership.close();
      await messages.close();
      await sendBatch.close();
      await fake.stop();
    }
  },
);
