/**
 * A local HTTP server that speaks the sending APIs of the Meta Cloud API
 * (`POST /{version}/{phone-number-id}/messages`), Evolution API (`POST /message/sendText/{instance}`),
 * WAHA (`POST /api/sendText`) and Twilio (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
 * form-encoded, basic auth), with their real request and response shapes. It counts the
 * calls per recipient and answers each call as its `behave` function says: succeed, throttle
 * (429 / 130429), reject permanently (131026), fail on the server's side after taking the request
 * (Graph 500 with code 1, Graph 503 with code 2; Evolution API and WAHA 500 / 503), accept then
 * hang past the client's timeout, or accept then drop the connection. "Down" is
 * {@link FakeWhatsAppProvider.stop}.
 */

/** How the fake answers one call. */
export type FakeBehaviour =
  | "succeed"
  | "throttle"
  | "permanent"
  | "server_error"
  | "unavailable"
  | "hang"
  | "drop";

/** One call received. */
export interface FakeCall {
  api: "meta" | "evolution" | "waha" | "twilio";
  /** The recipient's digits. */
  to: string;
  /** Cloud API biz_opaque_callback_data (the recipient id), when sent. */
  callbackData?: string;
  /** Twilio's StatusCallback, when sent. */
  statusCallback?: string;
  text?: string;
  template?: unknown;
  /** The message id answered (or that would have been answered, for hang and drop). */
  messageId: string;
  behaviour: FakeBehaviour;
  /** performance.now() when received. */
  at: number;
  headers: Record<string, string>;
}

/** The running fake. */
export class FakeWhatsAppProvider {
  readonly calls: FakeCall[] = [];
  /** Decides the answer of each call; `n` is the call's 1-based index for that recipient. */
  behave: (to: string, n: number) => FakeBehaviour = () => "succeed";
  /** How long to hold each answer (ms), by recipient and call index; 0 by default. */
  answerDelayMs: (to: string, n: number) => number = () => 0;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #hanging = new Set<() => void>();
  #seq = 0;

  private constructor(server: Deno.HttpServer<Deno.NetAddr>) {
    this.#server = server;
  }

  /** Starts the fake on a free loopback port. */
  static start(): FakeWhatsAppProvider {
    const holder: { fake?: FakeWhatsAppProvider } = {};
    const server = Deno.serve(
      { port: 0, hostname: "127.0.0.1", onListen: () => {} },
      (request) => holder.fake!.#handle(request),
    );
    holder.fake = new FakeWhatsAppProvider(server);
    return holder.fake;
  }

  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  /** Calls received per recipient digits. */
  callsPerRecipient(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const call of this.calls) counts.set(call.to, (counts.get(call.to) ?? 0) + 1);
    return counts;
  }

  /** Resolves once `n` calls were received. */
  async waitForCalls(n: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.calls.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.calls.length} of ${n} calls arrived`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Stops listening ("down"); hanging calls are released. */
  async stop(): Promise<void> {
    for (const release of this.#hanging) release();
    await this.#server.shutdown();
  }

  async #handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    const headers = Object.fromEntries(request.headers);
    const body = (headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")
      ? Object.fromEntries(new URLSearchParams(await request.text()))
      : await request.json().catch(() => ({}));
    let api: FakeCall["api"];
    let to: string;
    if (/^\/v[0-9.]+\/[^/]+\/messages$/.test(path)) {
      api = "meta";
      if (headers.authorization !== "Bearer test-meta-token") return unauthorizedMeta();
      to = String(body.to ?? "");
    } else if (path.startsWith("/message/sendText/")) {
      api = "evolution";
      if (headers.apikey !== "test-evolution-key") {
        return Response.json({ status: 401 }, { status: 401 });
      }
      to = String(body.number ?? "");
    } else if (path === "/api/sendText") {
      api = "waha";
      to = String(body.chatId ?? "").replace(/@c\.us$/, "");
    } else if (path === `/2010-04-01/Accounts/${TWILIO_ACCOUNT_SID}/Messages.json`) {
      api = "twilio";
      if (headers.authorization !== `Basic ${btoa(`${TWILIO_ACCOUNT_SID}:test-twilio-token`)}`) {
        return twilioError(401, 20003, "Authenticate");
      }
      to = String(body.To ?? "").replace(/^whatsapp:\+/, "");
    } else {
      return Response.json({ error: "not found" }, { status: 404 });
    }
    const n = this.calls.filter((c) => c.to === to).length + 1;
    const behaviour = this.behave(to, n);
    this.#seq++;
    const rawId = `3EB0${String(this.#seq).padStart(12, "0")}${to.slice(-4)}`;
    const messageId = api === "meta"
      ? `wamid.HBgL${btoa(`${to}${rawId}`)}`
      : api === "twilio"
      ? `SM${String(this.#seq).padStart(8, "0")}${"0".repeat(16)}${to.slice(-8).padStart(8, "0")}`
      : rawId;
    this.calls.push({
      api,
      to,
      callbackData: body.biz_opaque_callback_data,
      statusCallback: body.StatusCallback,
      text: body.text?.body ?? (typeof body.text === "string" ? body.text : undefined) ?? body.Body,
      template: body.template ??
        (body.ContentSid
          ? { contentSid: body.ContentSid, variables: JSON.parse(body.ContentVariables ?? "{}") }
          : undefined),
      messageId,
      behaviour,
      at: performance.now(),
      headers,
    });
    const delayMs = this.answerDelayMs(to, n);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    switch (behaviour) {
      case "succeed":
        return success(api, to, messageId, body);
      case "throttle":
        if (api === "twilio") return twilioError(429, 20429, "Too Many Requests");
        return api === "meta"
          ? metaError(
            400,
            130429,
            "Rate limit hit",
            "Cloud API message throughput has been reached.",
          )
          : Response.json({ status: 429, error: "Too Many Requests" }, { status: 429 });
      case "permanent":
        if (api === "twilio") {
          return twilioError(
            400,
            21211,
            `The 'To' number whatsapp:+${to} is not a valid phone number.`,
          );
        }
        return api === "meta"
          ? metaError(400, 131026, "Message undeliverable", "Message Undeliverable.")
          : api === "evolution"
          ? Response.json({
            status: 400,
            error: "Bad Request",
            response: { message: [{ exists: false, jid: `${to}@s.whatsapp.net`, number: to }] },
          }, { status: 400 })
          : Response.json({ statusCode: 400, message: "chat not found" }, { status: 400 });
      case "server_error":
        if (api === "twilio") return twilioError(500, 20500, "Internal Server Error");
        return api === "meta"
          ? metaError(500, 1, "An unknown error has occurred.", undefined, true)
          : api === "evolution"
          ? Response.json({
            status: 500,
            error: "Internal Server Error",
            response: { message: "Internal Server Error" },
          }, { status: 500 })
          : Response.json({
            statusCode: 500,
            timestamp: new Date().toISOString(),
            exception: { message: "Failed to send the message", name: "Error" },
          }, { status: 500 });
      case "unavailable":
        if (api === "twilio") return twilioError(503, 20503, "Service Unavailable");
        return api === "meta"
          ? metaError(503, 2, "Service temporarily unavailable", undefined, true)
          : api === "evolution"
          ? Response.json({
            status: 503,
            error: "Service Unavailable",
            response: { message: "Service Unavailable" },
          }, { status: 503 })
          : Response.json({ statusCode: 503, message: "Service Unavailable" }, { status: 503 });
      case "hang":
        await new Promise<void>((resolve) => {
          this.#hanging.add(resolve);
        });
        return new Response(null, { status: 504 });
      case "drop": {
        const bytes = new TextEncoder().encode('{"messaging_product":"whats');
        return new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(bytes);
              controller.error(new Error("connection dropped"));
            },
          }),
          { status: 200, headers: { "content-type": "application/json", "content-length": "400" } },
        );
      }
    }
  }
}

function success(
  api: FakeCall["api"],
  to: string,
  messageId: string,
  body: Record<string, unknown>,
) {
  if (api === "meta") {
    return Response.json({
      messaging_product: "whatsapp",
      contacts: [{ input: to, wa_id: to }],
      messages: [{ id: messageId, message_status: "accepted" }],
    });
  }
  if (api === "twilio") {
    const now = new Date().toUTCString().replace("GMT", "+0000");
    const uri = `/2010-04-01/Accounts/${TWILIO_ACCOUNT_SID}/Messages/${messageId}`;
    return Response.json({
      account_sid: TWILIO_ACCOUNT_SID,
      api_version: "2010-04-01",
      body: body.Body ?? "",
      date_created: now,
      date_sent: null,
      date_updated: now,
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      from: body.From,
      messaging_service_sid: null,
      num_media: "0",
      num_segments: "1",
      price: null,
      price_unit: null,
      sid: messageId,
      status: "queued",
      subresource_uris: { media: `${uri}/Media.json` },
      to: body.To,
      uri: `${uri}.json`,
    }, { status: 201 });
  }
  if (api === "evolution") {
    return Response.json({
      key: { remoteJid: `${to}@s.whatsapp.net`, fromMe: true, id: messageId },
      message: { conversation: body.text },
      messageTimestamp: String(Math.floor(Date.now() / 1000)),
      status: "PENDING",
    }, { status: 201 });
  }
  return Response.json({
    id: {
      fromMe: true,
      remote: `${to}@c.us`,
      id: messageId,
      _serialized: `true_${to}@c.us_${messageId}`,
    },
    body: body.text,
    from: `${to}@c.us`,
    fromMe: true,
    timestamp: Math.floor(Date.now() / 1000),
  }, { status: 201 });
}

function metaError(
  status: number,
  code: number,
  message: string,
  details: string | undefined,
  transient = false,
): Response {
  return Response.json({
    error: {
      message: details === undefined ? message : `(#${code}) ${message}`,
      type: "OAuthException",
      code,
      ...(details === undefined ? {} : { error_data: { messaging_product: "whatsapp", details } }),
      ...(transient ? { is_transient: true } : {}),
      fbtrace_id: "AbCdEfGh",
    },
  }, { status });
}

/** The Account SID the fake expects (any 34-character AC… SID works with Twilio). */
export const TWILIO_ACCOUNT_SID = "AC00000000000000000000000000000001";

function twilioError(status: number, code: number, message: string): Response {
  return Response.json({
    code,
    message,
    more_info: `https://www.twilio.com/docs/errors/${code}`,
    status,
  }, { status });
}

function unauthorizedMeta(): Response {
  return metaError(401, 190, "Invalid OAuth access token", "Invalid OAuth access token");
}

/** The provider environment for whatsapp-send-batch against this fake. */
export function providerEnv(
  fake: { url: string },
  kind: "meta" | "evolution" | "waha" | "twilio",
): Record<string, string> {
  if (kind === "twilio") {
    return {
      SEND_PROVIDER: "twilio",
      TWILIO_API_URL: fake.url,
      TWILIO_ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: "test-twilio-token",
      TWILIO_WHATSAPP_FROM: "+14155238886",
    };
  }
  if (kind === "meta") {
    return {
      SEND_PROVIDER: "meta",
      META_API_BASE_URL: fake.url,
      META_PHONE_NUMBER_ID: "106540352242922",
      META_ACCESS_TOKEN: "test-meta-token",
    };
  }
  if (kind === "evolution") {
    return {
      SEND_PROVIDER: "evolution",
      EVOLUTION_API_URL: fake.url,
      EVOLUTION_API_KEY: "test-evolution-key",
      EVOLUTION_INSTANCE: "agency",
    };
  }
  return { SEND_PROVIDER: "waha", WAHA_API_URL: fake.url, WAHA_API_KEY: "test-waha-key" };
}
