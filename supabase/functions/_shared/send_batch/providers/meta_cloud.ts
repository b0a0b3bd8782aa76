/**
 * Meta WhatsApp Cloud API: `POST {base}/{version}/{phone-number-id}/messages` with a Bearer
 * token; text or template; the recipient id travels as `biz_opaque_callback_data` and comes back
 * on every status webhook.
 */
import type { BatchMessage } from "../message.ts";
import {
  digitsOf,
  isOutcome,
  type OutboundMessage,
  outcomeFromStatus,
  postJson,
  type SendOutcome,
  type SendProvider,
} from "./provider.ts";

/** Settings of {@link MetaCloudProvider}. */
export interface MetaCloudOptions {
  baseUrl: string;
  version: string;
  phoneNumberId: string;
  accessToken: string;
  timeoutMs: number;
}

/** Cloud API error codes that mean "too fast, nothing sent": back off, whatever the status. */
const THROTTLED = new Set(["4", "80007", "130429", "131048", "131056"]);
/**
 * Cloud API error codes of temporary trouble on Meta's side (1 API Unknown, "invalid request or
 * possible server error"; 2 API Service, downtime or overload; 131000 something went wrong;
 * 131016 service unavailable; 133004 server temporarily unavailable). With a 4xx the request was
 * refused, so trying again later is safe; with a 5xx the message may have gone out (`unknown`).
 */
const TEMPORARY = new Set(["1", "2", "131000", "131016", "133004"]);

type CloudError = {
  error?: { code?: number; message?: string; error_data?: { details?: string } };
};
type CloudSuccess = { messages?: { id?: string }[] };

function messageBody(message: BatchMessage): Record<string, unknown> {
  if (message.type === "text") {
    return { type: "text", text: { body: message.text, preview_url: false } };
  }
  return {
    type: "template",
    template: {
      name: message.template.name,
      language: { code: message.template.language },
      components: message.template.components,
    },
  };
}

/** Sends through the Cloud API. */
export class MetaCloudProvider implements SendProvider {
  readonly name = "meta";
  readonly supportsTemplates = true;
  readonly #options: MetaCloudOptions;
  readonly #url: string;

  constructor(options: MetaCloudOptions) {
    this.#options = options;
    this.#url = `${options.baseUrl}/${options.version}/${options.phoneNumberId}/messages`;
  }

  async send(outbound: OutboundMessage): Promise<SendOutcome> {
    const result = await postJson(
      this.#url,
      { authorization: `Bearer ${this.#options.accessToken}` },
      {
        messaging_product: "whatsapp",
        recipient_type: "individual",
        to: digitsOf(outbound.phone),
        biz_opaque_callback_data: outbound.recipientId,
        ...messageBody(outbound.message),
      },
      this.#options.timeoutMs,
    );
    if (isOutcome(result)) return result;
    if (result.status >= 200 && result.status < 300) {
      const id = (result.body as CloudSuccess)?.messages?.[0]?.id;
      if (typeof id === "string" && id !== "") return { kind: "sent", messageId: id };
      return { kind: "unknown", reason: "accepted without a message id" };
    }
    const error = (result.body as CloudError)?.error;
    if (error?.code === undefined) return outcomeFromStatus(result, `HTTP ${result.status}`);
    const code = String(error.code);
    if (THROTTLED.has(code)) {
      return { kind: "throttled", code, retryAfterMs: result.retryAfterMs };
    }
    // A 5xx never proves that nothing was sent, whatever its code (1 and 2 included).
    if (result.status >= 500) {
      return { kind: "unknown", reason: `provider answered ${result.status} (${code})` };
    }
    return {
      kind: "rejected",
      code,
      message: error.error_data?.details ?? error.message ?? `HTTP ${result.status}`,
      retryable: TEMPORARY.has(code),
    };
  }
}
