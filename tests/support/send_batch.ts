/**
 * Helpers for whatsapp-send-batch tests: a handler built against the test database and a fake
 * provider, and requests carrying a JWT.
 */
import {
  createSendBatchHandler,
  depsFromConfig,
} from "../../supabase/functions/whatsapp-send-batch/handler.ts";
import { parseSendBatchConfig } from "../../supabase/functions/_shared/send_batch/config.ts";
import { silentLogger } from "../../supabase/functions/_shared/core/log.ts";
import type { SendBatchService } from "../../supabase/functions/_shared/send_batch/service.ts";
import { functionDatabaseUrl } from "./env.ts";
import { type FakeWhatsAppProvider, providerEnv } from "./fake_whatsapp_provider.ts";

/** A handler with its service, for direct calls. */
export interface SendBatchUnderTest {
  handler: (request: Request) => Promise<Response>;
  service: SendBatchService;
  /** The dependencies the handler was built from (the same objects it uses). */
  deps: ReturnType<typeof depsFromConfig>;
  close(): Promise<void>;
}

/** Builds the handler against the test database and `fake` (a high rate unless overridden). */
export function sendBatchHandler(
  fake: { url: string },
  env: Record<string, string> = {},
  kind: "meta" | "evolution" | "waha" | "twilio" = "meta",
): SendBatchUnderTest {
  const config = parseSendBatchConfig({
    SUPABASE_DB_URL: functionDatabaseUrl(),
    SEND_RATE_PER_SECOND: "2000",
    SEND_PROVIDER_TIMEOUT_MS: "500",
    SEND_BACKOFF_MS: "100",
    ...providerEnv(fake, kind),
    ...env,
  });
  const deps = depsFromConfig(config);
  deps.logger = silentLogger;
  const { handler, service } = createSendBatchHandler(deps);
  return {
    handler,
    service,
    deps,
    async close() {
      await service.idle();
      await deps.repository.close();
      await deps.idempotency?.close();
    },
  };
}

/** Calls a handler (or a URL) with a JWT; returns status and JSON body. */
export async function call(
  target: ((request: Request) => Promise<Response>) | string,
  method: string,
  path: string,
  jwt: string | undefined,
  body?: unknown,
  contentType = "application/json",
  // deno-lint-ignore no-explicit-any -- response bodies are read field by field in assertions
): Promise<{ status: number; body: Record<string, any> }> {
  const base = typeof target === "string" ? target : "http://localhost/whatsapp-send-batch";
  const headers: Record<string, string> = {};
  if (jwt) headers.authorization = `Bearer ${jwt}`;
  if (body !== undefined) headers["content-type"] = contentType;
  const request = new Request(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const response = typeof target === "string" ? await fetch(request) : await target(request);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

/** `n` distinct valid phone numbers (US, 555-01xx style but possible). */
export function phones(n: number, seed = Math.floor(Math.random() * 1e6)): string[] {
  return Array.from({ length: n }, (_, i) => {
    const line = String((seed * 7919 + i) % 10_000_000).padStart(7, "0");
    return `+1415${line}`;
  });
}

/** Waits until `check` is true, polling. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Re-exported for tests that need the fake's type. */
export type { FakeWhatsAppProvider };
