/**
 * Message formats without the database: Twilio's published signature examples, identity
 * normalisation per gateway, and fuzzing of the detector and parsers (and of the handler over
 * the real database: never 5xx, garbage never writes).
 */
import assert from "node:assert/strict";
import {
  twilioSignature,
  verifyTwilioSignature,
} from "../supabase/functions/_shared/core/twilio_signature.ts";
import { UnauthorizedError } from "../supabase/functions/_shared/core/webhook_auth.ts";
import type { DeliveryInput } from "../supabase/functions/_shared/messages/formats/delivery.ts";
import { parseMessageDelivery } from "../supabase/functions/_shared/messages/formats/registry.ts";
import { normalizeMessageId } from "../supabase/functions/_shared/messages/normalize.ts";
import * as ex from "./fixtures/message_examples.ts";
import { sqlClient } from "./support/env.ts";
import { mutate, prng, randomJson } from "./support/fuzz.ts";
import { buildMessageWebhook, jsonDelivery, MESSAGE_URL } from "./support/message_webhook.ts";

Deno.test("twilio signature: Twilio's published examples", () => {
  const url = "https://mycompany.com/myapp.php?foo=1&bar=2";
  // The example of Twilio's security documentation (older and current editions).
  const older = new URLSearchParams({
    CallSid: "CA1234567890ABCDE",
    Caller: "+12349013030",
    Digits: "1234",
    From: "+12349013030",
    To: "+18005551212",
  });
  assert.equal(twilioSignature("12345", url, older), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
  const current = new URLSearchParams({
    CallSid: "CA1234567890ABCDE",
    Caller: "+14158675310",
    Digits: "1234",
    From: "+14158675310",
    To: "+18005551212",
  });
  assert.equal(twilioSignature("12345", url, current), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
  verifyTwilioSignature("12345", "GvWf1cFY/Q7PnoempGyD5oXAezc=", url, current);
  // Parameter order does not matter; a changed value, URL or token does.
  const shuffled = new URLSearchParams([...current.entries()].reverse());
  verifyTwilioSignature("12345", "GvWf1cFY/Q7PnoempGyD5oXAezc=", url, shuffled);
  current.set("Digits", "1235");
  assert.throws(
    () => verifyTwilioSignature("12345", "GvWf1cFY/Q7PnoempGyD5oXAezc=", url, current),
    UnauthorizedError,
  );
  assert.throws(() => verifyTwilioSignature("12345", "short", url, older), UnauthorizedError);
});

const NOW = Date.parse("2026-11-22T12:00:00Z");
const json = (value: unknown): DeliveryInput => ({ kind: "json", json: value });

Deno.test("message ids: WAHA's serialised ids become the WhatsApp id; others are kept", () => {
  assert.equal(
    normalizeMessageId("false_5511988887777@c.us_3EB0C431C26A1916E07A"),
    "3EB0C431C26A1916E07A",
  );
  assert.equal(
    normalizeMessageId("true_120363025246125486@g.us_3EB0AAAA_5511988887777@c.us"),
    "3EB0AAAA",
  );
  assert.equal(
    normalizeMessageId("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"),
    "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
  );
  assert.equal(
    normalizeMessageId("SM0123456789abcdef0123456789abcdef"),
    "SM0123456789abcdef0123456789abcdef",
  );
  assert.throws(() => normalizeMessageId("has space"));
});

Deno.test("evolution: LID chats with their phone, protobuf timestamps, group senders, statuses", () => {
  const parsed = parseMessageDelivery(
    json({
      ...ex.evolutionUpsert({
        instance: "i",
        sender: "5511999990000@s.whatsapp.net",
        id: "ABC",
        remoteJid: "123456789012345@lid",
      }),
      data: {
        key: {
          id: "ABC",
          remoteJid: "123456789012345@lid",
          remoteJidAlt: "5511988887777@s.whatsapp.net",
          fromMe: false,
        },
        message: { imageMessage: { caption: "look", mimetype: "image/jpeg", url: "https://x/y" } },
        messageType: "imageMessage",
        messageTimestamp: { low: Math.floor(NOW / 1000) - 30, high: 0, unsigned: true },
      },
    }),
    NOW,
  );
  assert.equal(parsed.kind, "items");
  if (parsed.kind !== "items" || !parsed.items[0].ok) throw new Error("not parsed");
  const event = parsed.items[0].event;
  assert.equal(event.kind, "message");
  if (event.kind !== "message") return;
  assert.deepEqual(
    [event.account, event.chat, event.sender, event.type, event.body, event.at],
    ["+5511999990000", "+5511988887777", "+5511988887777", "image", "look", NOW - 30_000],
  );
  assert.equal(event.media?.mimeType, "image/jpeg");
  const update = parseMessageDelivery(
    json(ex.evolutionUpdate({
      instance: "i",
      sender: "5511999990000@s.whatsapp.net",
      keyId: "ABC",
      remoteJid: "5511988887777@s.whatsapp.net",
      status: "DELIVERY_ACK",
    })),
    NOW,
  );
  assert.ok(update.kind === "items" && update.items[0].ok);
  if (update.kind === "items" && update.items[0].ok) {
    assert.deepEqual(update.items[0].event, {
      kind: "status",
      account: "+5511999990000",
      messageId: "ABC",
      at: NOW,
      status: "delivered",
      chat: "+5511988887777",
      fromMe: true,
    });
  }
  const presence = parseMessageDelivery(
    json({ event: "presence.update", instance: "i", data: {} }),
    NOW,
  );
  assert.equal(presence.kind, "ignored");
});

Deno.test("waha: me.id that is not a phone rejects the item, not the envelope; other events ignored", () => {
  const message = ex.wahaMessage({
    session: "default",
    me: "default1@c.us",
    id: "ABC",
    from: "5511988887777@c.us",
    to: "x@c.us",
  });
  const parsed = parseMessageDelivery(json(message), NOW);
  assert.ok(parsed.kind === "items" && !parsed.items[0].ok);
  const ignored = parseMessageDelivery(json({ ...message, event: "presence.update" }), NOW);
  assert.equal(ignored.kind, "ignored");
  const story = parseMessageDelivery(
    json(
      ex.wahaMessage({
        session: "s",
        me: "5511999990000@c.us",
        id: "S",
        from: "status@broadcast",
        to: "5511999990000@c.us",
      }),
    ),
    NOW,
  );
  assert.ok(story.kind === "items" && !story.items[0].ok && story.items[0].ignored);
});

Deno.test("twilio: incoming vs status callbacks, accounts from To/From, statuses mapped", () => {
  const incoming = parseMessageDelivery(
    {
      kind: "form",
      form: ex.twilioIncoming({ sid: "SM1", from: "5511988887777", to: "14155238886" }),
    },
    NOW,
  );
  assert.ok(incoming.kind === "items" && incoming.items[0].ok);
  if (incoming.kind === "items" && incoming.items[0].ok) {
    assert.equal(incoming.items[0].event.account, "+14155238886");
    assert.equal(incoming.items[0].event.kind, "message");
  }
  for (
    const [twilio, ours] of [["undelivered", "failed"], ["queued", "pending"], ["read", "read"]]
  ) {
    const status = parseMessageDelivery(
      {
        kind: "form",
        form: ex.twilioStatus({
          sid: "SM1",
          status: twilio,
          from: "14155238886",
          to: "5511988887777",
          errorCode: "63016",
        }),
      },
      NOW,
    );
    assert.ok(status.kind === "items" && status.items[0].ok);
    if (status.kind === "items" && status.items[0].ok && status.items[0].event.kind === "status") {
      assert.equal(status.items[0].event.status, ours);
      assert.equal(status.items[0].event.account, "+14155238886");
      assert.equal(status.items[0].event.errorCode, "63016");
    }
  }
});

const EXAMPLES: unknown[] = [
  ex.metaWebhook("106540352242922", [{
    messages: [ex.metaMessage({ id: "wamid.A", from: "16315551181" })],
    statuses: [ex.metaStatus({ id: "wamid.B", status: "read", recipient: "16315551181" })],
  }]),
  ex.evolutionUpsert({
    instance: "i",
    sender: "5511999990000@s.whatsapp.net",
    id: "A",
    remoteJid: "5511988887777@s.whatsapp.net",
  }),
  ex.evolutionUpdate({
    instance: "i",
    sender: "5511999990000@s.whatsapp.net",
    keyId: "A",
    remoteJid: "5511988887777@s.whatsapp.net",
    status: "READ",
  }),
  ex.wahaMessage({
    session: "s",
    me: "5511999990000@c.us",
    id: "A",
    from: "5511988887777@c.us",
    to: "5511999990000@c.us",
  }),
  ex.wahaAck({ session: "s", me: "5511999990000@c.us", id: "A", to: "5511988887777@c.us", ack: 2 }),
];

Deno.test("fuzz: message parsers never throw anything but their own errors", () => {
  const rand = prng(8);
  for (let i = 0; i < 5000; i++) {
    const value = i % 2 === 0 ? randomJson(rand) : mutate(EXAMPLES[i % EXAMPLES.length], rand);
    try {
      parseMessageDelivery(json(value), NOW);
    } catch (error) {
      const name = (error as Error).name;
      assert.ok(
        name === "UnknownFormatError" || name === "PayloadFormatError",
        `input ${JSON.stringify(value)} threw ${name}: ${(error as Error).message}`,
      );
    }
  }
  for (let i = 0; i < 2000; i++) {
    const form = new URLSearchParams();
    for (let k = Math.floor(rand() * 6); k > 0; k--) {
      const name = ["MessageSid", "MessageStatus", "From", "To", "Body", "NumMedia", "SmsStatus"][
        Math.floor(rand() * 7)
      ];
      form.append(name, String(randomJson(rand, 4)));
    }
    try {
      parseMessageDelivery({ kind: "form", form }, NOW);
    } catch (error) {
      assert.equal((error as Error).name, "UnknownFormatError");
    }
  }
});

Deno.test("fuzz: over HTTP never 5xx; random and truncated JSON never write", async () => {
  const instance = buildMessageWebhook();
  const sql = sqlClient();
  const count = async () =>
    Number((await sql`select count(*)::int as n from public.whatsapp_messages`)[0].n);
  const send = async (body: string) => {
    const response = await instance.handler(await jsonDelivery(body, "meta", MESSAGE_URL));
    await response.body?.cancel();
    assert.ok(response.status < 500, `${response.status} for ${body}`);
    return response.status;
  };
  try {
    const before = await count();
    const rand = prng(99);
    for (let i = 0; i < 500; i++) await send(JSON.stringify(randomJson(rand)));
    for (const example of EXAMPLES) {
      const text = JSON.stringify(example);
      for (let cut = 0; cut < text.length; cut += Math.max(1, Math.floor(text.length / 30))) {
        assert.equal(await send(text.slice(0, cut)), 400);
      }
    }
    assert.equal(await count(), before, "random and truncated JSON wrote nothing");
    for (let i = 0; i < 300; i++) {
      await send(JSON.stringify(mutate(EXAMPLES[i % EXAMPLES.length], rand)));
    }
  } finally {
    await sql.end();
    await instance.close();
  }
});
