/**
 * WAHA: `POST {url}/api/sendText` with `X-Api-Key`; text only. The message id is normalised as
 * whatsapp_messages stores it: `true_<chat>@c.us_<id>` → `<id>`.
 */
import {
  digitsOf,
  isOutcome,
  type OutboundMessage,
  outcomeFromStatus,
  postJson,
  type SendOutcome,
  type SendProvider,
} from "./provider.ts";

/** Settings of {@link WahaProvider}. */
export interface WahaOptions {
  baseUrl: string;
  apiKey?: string;
  session: string;
  timeoutMs: number;
}

type WahaAnswer = {
  id?: string | { id?: string; _serialized?: string };
  key?: { id?: string };
  message?: unknown;
};

/** The bare message id of a WAHA message id (`true_…@c.us_<id>`, an id object, or NOWEB `key`). */
export function wahaMessageId(body: WahaAnswer | undefined): string | undefined {
  const id = body?.id;
  if (typeof id === "string") return id.includes("_") ? id.slice(id.lastIndexOf("_") + 1) : id;
  if (id && typeof id === "object") {
    if (typeof id.id === "string") return id.id;
    if (typeof id._serialized === "string") return wahaMessageId({ id: id._serialized });
  }
  return typeof body?.key?.id === "string" ? body.key.id : undefined;
}

/** Sends through a WAHA session. */
export class WahaProvider implements SendProvider {
  readonly name = "waha";
  readonly supportsTemplates = false;
  readonly #options: WahaOptions;

  constructor(options: WahaOptions) {
    this.#options = options;
  }

  async send(outbound: OutboundMessage): Promise<SendOutcome> {
    if (outbound.message.type !== "text") {
      return { kind: "rejected", code: "unsupported", message: "text only", retryable: false };
    }
    const headers: Record<string, string> = {};
    if (this.#options.apiKey) headers["x-api-key"] = this.#options.apiKey;
    const result = await postJson(
      `${this.#options.baseUrl}/api/sendText`,
      headers,
      {
        session: this.#options.session,
        chatId: `${digitsOf(outbound.phone)}@c.us`,
        text: outbound.message.text,
      },
      this.#options.timeoutMs,
    );
    if (isOutcome(result)) return result;
    const body = result.body as WahaAnswer | undefined;
    if (result.status >= 200 && result.status < 300) {
      const id = wahaMessageId(body);
      if (id) return { kind: "sent", messageId: id };
      return { kind: "unknown", reason: "accepted without a message id" };
    }
    return outcomeFromStatus(
      result,
      `HTTP ${result.status} ${JSON.stringify(body?.message ?? "")}`.slice(0, 300),
    );
  }
}
