/**
 * Twilio's Messages API for WhatsApp: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`,
 * form-encoded, HTTP basic auth with the Account SID and Auth Token. `From` and `To` are
 * `whatsapp:+<E.164>`; a text goes as `Body`, a template as a Content API `ContentSid` (`HX…`) with
 * `ContentVariables`. The answer's `sid` (`SM…`) is the message id that Twilio's status callbacks
 * carry as `MessageSid`, so the message webhook reconciles `unknown` recipients with it.
 */
import type { BatchMessage } from "../message.ts";
import {
  isOutcome,
  type OutboundMessage,
  outcomeFromStatus,
  postForm,
  type SendOutcome,
  type SendProvider,
} from "./provider.ts";

/** Settings of {@link TwilioProvider}. */
export interface TwilioOptions {
  /** `https://api.twilio.com` unless overridden (tests). */
  baseUrl: string;
  accountSid: string;
  authToken: string;
  /** The WhatsApp sender, E.164 with `+`. */
  from: string;
  /** Where Twilio posts delivery statuses: the message webhook's public URL, when set. */
  statusCallback?: string;
  timeoutMs: number;
}

/** Twilio error codes that mean "too fast, nothing sent". */
const THROTTLED = new Set(["20429", "63018", "14107"]);
/** Twilio error codes worth trying again later (nothing was sent; a setting or a queue). */
const RETRYABLE = new Set(["20003", "20005", "63038", "30001"]);

type TwilioAnswer = { sid?: string; code?: number; message?: string; status?: number | string };

/** Twilio Content API variables from the Cloud-API-style template components: body params 1…n. */
export function contentVariables(message: Extract<BatchMessage, { type: "template" }>) {
  const variables: Record<string, string> = {};
  let n = 0;
  for (const component of message.template.components) {
    if (String(component.type ?? "").toLowerCase() !== "body") continue;
    const parameters = Array.isArray(component.parameters) ? component.parameters : [];
    for (const parameter of parameters as Record<string, unknown>[]) {
      n++;
      variables[String(n)] = String(parameter?.text ?? "");
    }
  }
  return variables;
}

function messageFields(message: BatchMessage): Record<string, string> {
  if (message.type === "text") return { Body: message.text };
  const fields: Record<string, string> = { ContentSid: message.template.name };
  const variables = contentVariables(message);
  if (Object.keys(variables).length > 0) fields.ContentVariables = JSON.stringify(variables);
  return fields;
}

/** Sends through Twilio. */
export class TwilioProvider implements SendProvider {
  readonly name = "twilio";
  readonly supportsTemplates = true;
  readonly #options: TwilioOptions;
  readonly #url: string;
  readonly #authorization: string;

  constructor(options: TwilioOptions) {
    this.#options = options;
    this.#url = `${options.baseUrl}/2010-04-01/Accounts/${
      encodeURIComponent(options.accountSid)
    }/Messages.json`;
    this.#authorization = `Basic ${btoa(`${options.accountSid}:${options.authToken}`)}`;
  }

  async send(outbound: OutboundMessage): Promise<SendOutcome> {
    if (
      outbound.message.type === "template" && !/^HX[0-9a-fA-F]{32}$/.test(
        outbound.message.template.name,
      )
    ) {
      return {
        kind: "rejected",
        code: "invalid_template",
        message: "a Twilio template is a Content API ContentSid (HX…)",
        retryable: false,
      };
    }
    const fields: Record<string, string> = {
      From: `whatsapp:${this.#options.from}`,
      To: `whatsapp:${outbound.phone}`,
      ...messageFields(outbound.message),
    };
    if (this.#options.statusCallback) {
      // The recipient id comes back on every status callback, as Cloud API's callback data does.
      const url = new URL(this.#options.statusCallback);
      url.searchParams.set("callback_data", outbound.recipientId);
      fields.StatusCallback = url.toString();
    }
    const result = await postForm(
      this.#url,
      { authorization: this.#authorization },
      fields,
      this.#options.timeoutMs,
    );
    if (isOutcome(result)) return result;
    const body = result.body as TwilioAnswer | undefined;
    if (result.status >= 200 && result.status < 300) {
      if (typeof body?.sid === "string" && /^(SM|MM)[0-9a-fA-F]{32}$/.test(body.sid)) {
        return { kind: "sent", messageId: body.sid };
      }
      return { kind: "unknown", reason: "accepted without a message sid" };
    }
    const code = body?.code === undefined ? undefined : String(body.code);
    if (code === undefined || result.status >= 500) {
      return outcomeFromStatus(result, `HTTP ${result.status}`);
    }
    if (THROTTLED.has(code) || result.status === 429) {
      return { kind: "throttled", code, retryAfterMs: result.retryAfterMs };
    }
    return {
      kind: "rejected",
      code,
      message: (body?.message ?? `HTTP ${result.status}`).slice(0, 300),
      retryable: RETRYABLE.has(code),
    };
  }
}
