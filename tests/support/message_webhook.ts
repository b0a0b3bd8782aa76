/**
 * Builds message-webhook instances in-process against the test database, and signed requests
 * for each gateway.
 */
import { parseConfig } from "../../supabase/functions/_shared/core/config.ts";
import { silentLogger } from "../../supabase/functions/_shared/core/log.ts";
import { twilioSignature } from "../../supabase/functions/_shared/core/twilio_signature.ts";
import { parseIdempotencyConfig } from "../../supabase/functions/_shared/core/idempotency/config.ts";
import { parseMessageSettings } from "../../supabase/functions/_shared/messages/config.ts";
import { createMessageWebhookFromConfig } from "../../supabase/functions/whatsapp-message-webhook/handler.ts";
import { databaseUrl } from "./env.ts";
import { type Scheme, SECRETS, signedHeaders } from "./signing.ts";

/** The URL the in-process handler is called with. */
export const MESSAGE_URL = "http://127.0.0.1:54321/functions/v1/whatsapp-message-webhook";

/** Settings of the test instances (secrets of every scheme). */
export const MESSAGE_ENV = {
  ...SECRETS,
  TWILIO_AUTH_TOKEN: "twilio-auth-token-for-tests",
  META_VERIFY_TOKEN: "meta-verify-token-for-tests",
};

/** One in-process function instance (its own memory tier and pool). */
export function buildMessageWebhook(env: Record<string, string> = {}) {
  const values = { SUPABASE_DB_URL: databaseUrl(), ...MESSAGE_ENV, ...env };
  return createMessageWebhookFromConfig(
    parseConfig(values),
    parseMessageSettings(values),
    silentLogger,
  );
}

/** An instance with the Idempotency-Key layer on (as `index.ts` builds it). */
export function buildMessageWebhookWithIdempotency(env: Record<string, string> = {}) {
  const values = { SUPABASE_DB_URL: databaseUrl(), ...MESSAGE_ENV, ...env };
  return createMessageWebhookFromConfig(
    parseConfig(values),
    parseMessageSettings(values),
    silentLogger,
    parseIdempotencyConfig(values),
  );
}

/** A JSON delivery signed with a scheme. */
export async function jsonDelivery(
  payload: unknown,
  scheme: Scheme,
  url = MESSAGE_URL,
): Promise<Request> {
  const body = typeof payload === "string" ? payload : JSON.stringify(payload);
  return new Request(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(await signedHeaders(scheme, body)) },
    body,
  });
}

/** A Twilio form post signed as Twilio signs it (URL + sorted parameters). */
export function twilioDelivery(
  form: URLSearchParams,
  url = MESSAGE_URL,
  token = MESSAGE_ENV.TWILIO_AUTH_TOKEN,
  signedUrl = url,
): Request {
  return new Request(url, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": twilioSignature(token, signedUrl, form),
    },
    body: form.toString(),
  });
}

/** Calls a handler; returns status, headers and the JSON (or text) body. */
export async function callHandler(
  handler: (request: Request) => Promise<Response>,
  request: Request,
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await handler(request);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch { /* TwiML or plain text */ }
  return { status: response.status, headers: response.headers, body };
}
