/**
 * Meta's subscription handshake (`GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`):
 * the message webhook echoes the challenge when the verify token matches `META_VERIFY_TOKEN`.
 */
import { timingSafeEqualBytes } from "../core/hmac.ts";
import { HttpError, MethodNotAllowedError } from "../core/http.ts";
import type { Logger } from "../core/log.ts";

const encoder = new TextEncoder();

/** Answers the handshake; `expected` is `META_VERIFY_TOKEN` (undefined when not configured). */
export function answerMetaHandshake(
  request: Request,
  expected: string | undefined,
  logger: Logger,
): Response {
  const query = request.url.indexOf("?");
  const params = new URLSearchParams(query === -1 ? "" : request.url.slice(query + 1));
  if (!params.has("hub.mode")) {
    throw new MethodNotAllowedError(
      "GET",
      "GET, POST",
      "GET only answers Meta's handshake and /health",
    );
  }
  if (params.get("hub.mode") !== "subscribe") {
    throw new HttpError(403, "forbidden", "hub.mode must be subscribe");
  }
  if (!params.get("hub.challenge")) {
    throw new HttpError(400, "missing_challenge", "hub.challenge is required", {
      details: [{ path: "hub.challenge", message: "required" }],
    });
  }
  if (!expected) {
    logger.warn("Meta verification refused", { configured: false });
    throw new HttpError(
      403,
      "forbidden",
      "META_VERIFY_TOKEN is not configured: this function cannot answer Meta's handshake",
    );
  }
  if (!sameText(params.get("hub.verify_token") ?? "", expected)) {
    logger.warn("Meta verification refused", { configured: true });
    throw new HttpError(403, "forbidden", "hub.verify_token does not match META_VERIFY_TOKEN");
  }
  return new Response(params.get("hub.challenge") ?? "", {
    status: 200,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** Constant-time comparison of two texts. */
function sameText(a: string, b: string): boolean {
  return timingSafeEqualBytes(encoder.encode(a), encoder.encode(b));
}
