/**
 * Evolution API (Baileys): `POST {url}/message/sendText/{instance}` with the `apikey` header;
 * text only. The message id is the Baileys `key.id`.
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

/** Settings of {@link EvolutionProvider}. */
export interface EvolutionOptions {
  baseUrl: string;
  apiKey: string;
  instance: string;
  timeoutMs: number;
}

type EvolutionAnswer = {
  key?: { id?: string };
  response?: { message?: unknown };
  message?: unknown;
};

/** Sends through an Evolution API instance. */
export class EvolutionProvider implements SendProvider {
  readonly name = "evolution";
  readonly supportsTemplates = false;
  readonly #options: EvolutionOptions;
  readonly #url: string;

  constructor(options: EvolutionOptions) {
    this.#options = options;
    this.#url = `${options.baseUrl}/message/sendText/${encodeURIComponent(options.instance)}`;
  }

  async send(outbound: OutboundMessage): Promise<SendOutcome> {
    if (outbound.message.type !== "text") {
      return { kind: "rejected", code: "unsupported", message: "text only", retryable: false };
    }
    const result = await postJson(
      this.#url,
      { apikey: this.#options.apiKey },
      { number: digitsOf(outbound.phone), text: outbound.message.text },
      this.#options.timeoutMs,
    );
    if (isOutcome(result)) return result;
    const body = result.body as EvolutionAnswer | undefined;
    if (result.status >= 200 && result.status < 300) {
      const id = body?.key?.id;
      if (typeof id === "string" && id !== "") return { kind: "sent", messageId: id };
      return { kind: "unknown", reason: "accepted without a message id" };
    }
    const detail = JSON.stringify(body?.response?.message ?? body?.message ?? "");
    return outcomeFromStatus(result, `HTTP ${result.status} ${detail}`.trim().slice(0, 300));
  }
}
