/**
 * The ceilings of the HTTP load figures, with nothing of ours in the way. Environment: PORT, and
 * BARE_MODE:
 * - `json` (default): a `Deno.serve` handler that parses the JSON body and answers;
 * - `hmac`: the fairer ceiling: it also reads the raw bytes and verifies the same
 *   `X-Webhook-Signature: sha256=<hex>` HMAC (`WEBHOOK_SECRET`) the function checks, with the
 *   project's {@link HmacKey}, before parsing.
 */
import { decodeHex } from "../supabase/functions/_shared/core/webhook_auth.ts";
import { HmacKey } from "../supabase/functions/_shared/core/hmac.ts";

const utf8 = new TextDecoder();

function hmacHandler(secret: string): (request: Request) => Promise<Response> {
  const key = new HmacKey("sha256", secret);
  return async (request) => {
    const body = new Uint8Array(await request.arrayBuffer());
    const header = request.headers.get("x-webhook-signature") ?? "";
    const expected = header.startsWith("sha256=") ? decodeHex(header.slice(7)) : undefined;
    if (!expected || !key.verify(body, expected)) {
      return Response.json({ success: false, error: "unauthorized" }, { status: 401 });
    }
    const json = JSON.parse(utf8.decode(body)) as { event?: unknown };
    return Response.json({ success: true, event: json.event ?? null });
  };
}

async function jsonHandler(request: Request): Promise<Response> {
  const body = await request.json() as { event?: unknown };
  return Response.json({ success: true, event: body.event ?? null });
}

if (import.meta.main) {
  const mode = Deno.env.get("BARE_MODE") ?? "json";
  Deno.serve({
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? 0),
    onListen: () => {},
  }, mode === "hmac" ? hmacHandler(Deno.env.get("WEBHOOK_SECRET") ?? "") : jsonHandler);
}
