/**
 * What both webhooks share through the one pipeline: the same rule for a forced `?format=` (a
 * known format that does not recognise the payload is an invalid payload of that format, an
 * unknown name is `unknown_format`), and the message webhook's answer to Meta's handshake when
 * META_VERIFY_TOKEN is not configured.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import { PayloadFormatError } from "../supabase/functions/_shared/core/formats/parse.ts";
import { UnknownFormatError } from "../supabase/functions/_shared/core/formats/registry.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { parseMembershipDelivery } from "../supabase/functions/_shared/membership/formats/registry.ts";
import { parseMessageDelivery } from "../supabase/functions/_shared/messages/formats/registry.ts";
import { createMembershipWebhookFromConfig } from "../supabase/functions/whatsapp-membership-webhook/handler.ts";
import { EXAMPLE, sessions } from "./fixtures/gateway_examples.ts";
import * as ex from "./fixtures/message_examples.ts";
import { databaseUrl, signature, TEST_SECRET, uniqueGroup } from "./support/env.ts";
import {
  buildMessageWebhook,
  callHandler,
  jsonDelivery,
  MESSAGE_ENV,
  MESSAGE_URL,
} from "./support/message_webhook.ts";

const NOW = Date.UTC(2026, 10, 22, 5, 0, 0);
const MEMBERSHIP_URL = "http://127.0.0.1/whatsapp-membership-webhook";

const membershipPayload = () =>
  sessions.generic("s1", uniqueGroup(), "join", [{ digits: EXAMPLE.otherDigits }]);
const messagePayload = () =>
  ex.metaWebhook(ex.phoneNumberId(), [{
    messages: [ex.metaMessage({ id: `wamid.${ex.messageId()}`, from: ex.phoneDigits() })],
  }]);

/** The refusal of a forced format that does not recognise the payload. */
function assertMismatch(parse: () => unknown, format: string) {
  assert.throws(parse, (error: Error) => {
    assert.ok(error instanceof PayloadFormatError, error.name);
    assert.deepEqual(error.issues, [
      { path: "(root)", message: `payload is not of the "${format}" format` },
    ]);
    return true;
  });
}

Deno.test("forced ?format=: the same rule for both webhooks' registries", () => {
  const membership = membershipPayload();
  const messages = { kind: "json" as const, json: messagePayload() };
  // The right format forced: parsed as without ?format=.
  assert.equal(parseMembershipDelivery(membership, "generic").format, "generic");
  assert.equal(parseMessageDelivery(messages, NOW, "meta").format, "meta");
  // A known format that does not recognise the payload: refused as an invalid payload of it.
  assertMismatch(() => parseMembershipDelivery(membership, "waha"), "waha");
  assertMismatch(() => parseMessageDelivery(messages, NOW, "waha"), "waha");
  // A name no format has.
  assert.throws(() => parseMembershipDelivery(membership, "telegram"), UnknownFormatError);
  assert.throws(() => parseMessageDelivery(messages, NOW, "telegram"), UnknownFormatError);
});

Deno.test("forced ?format=: both webhooks answer a mismatch and an unknown name alike", async () => {
  const membership = createMembershipWebhookFromConfig(
    parseConfig({ SUPABASE_DB_URL: databaseUrl(), WEBHOOK_SECRET: TEST_SECRET }),
    silentLogger,
  );
  const messages = buildMessageWebhook();
  const membershipCall = (format: string) => {
    const body = JSON.stringify(membershipPayload());
    return callHandler(
      membership.handler,
      new Request(`${MEMBERSHIP_URL}?format=${format}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-webhook-signature": signature(body) },
        body,
      }),
    );
  };
  const messageCall = async (format: string) =>
    callHandler(
      messages.handler,
      await jsonDelivery(messagePayload(), "meta", `${MESSAGE_URL}?format=${format}`),
    );
  try {
    for (const call of [membershipCall, messageCall]) {
      const mismatch = await call("waha");
      assert.equal(mismatch.status, 400);
      assert.equal(mismatch.body.error, "invalid_payload");
      assert.deepEqual(mismatch.body.issues, [
        { path: "(root)", message: 'payload is not of the "waha" format' },
      ]);
      const unknown = await call("telegram");
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.error, "unknown_format");
    }
  } finally {
    await membership.close();
    await messages.close();
  }
});

Deno.test("Meta's handshake without META_VERIFY_TOKEN says it is not configured", async () => {
  const configured = buildMessageWebhook();
  const unconfigured = buildMessageWebhook({ META_VERIFY_TOKEN: "" });
  const url = (token: string) =>
    `${MESSAGE_URL}?hub.mode=subscribe&hub.verify_token=${token}&hub.challenge=1158201444`;
  try {
    const missing = await callHandler(unconfigured.handler, new Request(url("anything")));
    assert.equal(missing.status, 403);
    assert.match(missing.body.message, /META_VERIFY_TOKEN is not configured/);
    assert.doesNotMatch(missing.body.message, /does not match/);
    const wrong = await callHandler(configured.handler, new Request(url("nope")));
    assert.equal(wrong.status, 403);
    assert.match(wrong.body.message, /does not match META_VERIFY_TOKEN/);
    const right = await callHandler(
      configured.handler,
      new Request(url(MESSAGE_ENV.META_VERIFY_TOKEN)),
    );
    assert.equal(right.status, 200);
  } finally {
    await configured.close();
    await unconfigured.close();
  }
});
