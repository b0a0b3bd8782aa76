/**
 * whatsapp-send-batch through Twilio (`SEND_PROVIDER=twilio`) against the fake's Twilio Messages
 * API (form posts, basic auth, Twilio's JSON answers and error codes): each recipient called once,
 * errors classified, Content API templates, and a recipient whose call timed out (`unknown`)
 * reconciled by Twilio's status callback posted to the message webhook.
 */
import assert from "node:assert/strict";
import { sqlClient } from "./support/env.ts";
import { FakeWhatsAppProvider } from "./support/fake_whatsapp_provider.ts";
import { newUser } from "./support/jwt.ts";
import {
  buildMessageWebhook,
  callHandler,
  MESSAGE_ENV,
  twilioDelivery,
} from "./support/message_webhook.ts";
import { call, phones, sendBatchHandler } from "./support/send_batch.ts";
import { twilioStatus } from "./fixtures/message_examples.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const STATUS_URL = "https://example.supabase.co/functions/v1/whatsapp-message-webhook";

async function rows(batchId: string) {
  const sql = sqlClient(1);
  try {
    return [
      ...await sql<
        {
          id: string;
          phone: string;
          status: string;
          provider_message_id: string | null;
          error_code: string | null;
          retryable: boolean | null;
          delivery_status: string | null;
        }[]
      >`select id, phone, status, provider_message_id, error_code, retryable, delivery_status
          from public.whatsapp_send_recipients where batch_id = ${batchId} order by row_number`,
    ];
  } finally {
    await sql.end();
  }
}

Deno.test(
  "twilio: errors classified; each recipient called once; retry resends only the retryable",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const list = phones(5);
    const [permanent, throttled, serverError, hung] = list.slice(1).map((p) => p.slice(1));
    fake.behave = (to, n) =>
      to === permanent
        ? "permanent"
        : to === throttled && n === 1
        ? "throttle"
        : to === serverError
        ? "server_error"
        : to === hung
        ? "hang"
        : "succeed";
    const fn = sendBatchHandler(fake, { SEND_PROVIDER_TIMEOUT_MS: "300" }, "twilio");
    try {
      const user = await newUser();
      const created = await call(fn.handler, "POST", "", user.jwt, {
        message: "Hi {{name}}",
        recipients: list.map((phone, i) => ({ phone, name: `N${i}` })),
      });
      assert.equal(created.status, 201);
      const batchId = created.body.batch_id as string;
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      const stored = await rows(batchId);
      assert.deepEqual(stored.map((r) => r.status), [
        "sent",
        "failed",
        "sent",
        "unknown",
        "unknown",
      ]);
      assert.equal(stored[1].error_code, "21211");
      assert.equal(stored[1].retryable, false);
      const first = fake.calls.find((c) => c.to === list[0].slice(1))!;
      assert.equal(stored[0].provider_message_id, first.messageId);
      assert.match(first.messageId, /^SM[0-9a-f]{32}$/);
      assert.equal(first.text, "Hi N0");
      assert.equal(first.headers["content-type"], "application/x-www-form-urlencoded");
      // The throttled one was tried again after the back-off; every other recipient once.
      const perRecipient = fake.callsPerRecipient();
      assert.equal(perRecipient.get(throttled), 2);
      for (const to of [list[0].slice(1), permanent, serverError, hung]) {
        assert.equal(perRecipient.get(to), 1, to);
      }
      // A retry sends nothing again: the failure is permanent and unknowns are never resent alone.
      const retried = await call(fn.handler, "POST", `/${batchId}/retry`, user.jwt, {});
      assert.equal(retried.status, 200);
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      assert.equal(fake.calls.length, 6);
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "twilio: a Content API template goes as ContentSid with ContentVariables",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake, {}, "twilio");
    try {
      const user = await newUser();
      const contentSid = `HX${"b".repeat(32)}`;
      const created = await call(fn.handler, "POST", "", user.jwt, {
        message: {
          template: {
            name: contentSid,
            language: "en",
            components: [{ type: "body", parameters: [{ type: "text", text: "{{name}}" }] }],
          },
        },
        recipients: [{ phone: phones(1)[0], name: "Ana" }],
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      await call(fn.handler, "POST", `/${created.body.batch_id}/send`, user.jwt);
      await fn.service.idle();
      assert.equal(fake.calls.length, 1);
      assert.deepEqual(fake.calls[0].template, { contentSid, variables: { "1": "Ana" } });
      assert.equal((await rows(created.body.batch_id))[0].status, "sent");
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "twilio: a timed-out send is reconciled by its status callback (MessageSid and callback data)",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const list = phones(2);
    fake.behave = (to) => (to === list[1].slice(1) ? "hang" : "succeed");
    const fn = sendBatchHandler(
      fake,
      { SEND_PROVIDER_TIMEOUT_MS: "300", TWILIO_STATUS_CALLBACK_URL: STATUS_URL },
      "twilio",
    );
    const webhook = buildMessageWebhook({ TWILIO_WEBHOOK_URL: STATUS_URL });
    try {
      const user = await newUser();
      const created = await call(fn.handler, "POST", "", user.jwt, {
        message: "Hello",
        recipients: list.map((phone) => ({ phone })),
      });
      const batchId = created.body.batch_id as string;
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      const before = await rows(batchId);
      assert.deepEqual(before.map((r) => r.status), ["sent", "unknown"]);
      assert.equal(before[1].provider_message_id, null);
      // Twilio took the hung request after all: it posts statuses to the StatusCallback it was given.
      const hung = fake.calls.find((c) => c.to === list[1].slice(1))!;
      const callback = new URL(hung.statusCallback!);
      assert.equal(callback.searchParams.get("callback_data"), before[1].id);
      for (const status of ["sent", "delivered"]) {
        const form = twilioStatus({
          sid: hung.messageId,
          status,
          from: "14155238886",
          to: hung.to,
        });
        const request = twilioDelivery(form, callback.toString(), MESSAGE_ENV.TWILIO_AUTH_TOKEN);
        const answer = await callHandler(webhook.handler, request);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
      }
      const after = await rows(batchId);
      assert.equal(after[1].status, "sent");
      assert.equal(after[1].provider_message_id, hung.messageId);
      assert.equal(after[1].delivery_status, "delivered");
      assert.equal(fake.calls.length, 2, "nobody was called twice");
    } finally {
      await webhook.close();
      await fn.close();
      await fake.stop();
    }
  },
);
