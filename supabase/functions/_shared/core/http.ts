/**
 * HTTP helpers shared by the webhook functions: JSON responses, bounded body reading and the
 * errors that map to 4xx/503 statuses.
 */
import { cleanParam } from "./sanitize.ts";

/** An error that becomes an HTTP response with its own status and JSON body. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details?: unknown;
  readonly headers?: Record<string, string>;
  constructor(
    status: number,
    code: string,
    message: string,
    options?: { details?: unknown; headers?: Record<string, string>; cause?: unknown },
  ) {
    super(message, { cause: options?.cause });
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.details = options?.details;
    this.headers = options?.headers;
  }
}

/** 413: the body is larger than the limit. */
export class PayloadTooLargeError extends HttpError {
  constructor(limit: number) {
    super(413, "payload_too_large", `request body is larger than ${limit} bytes`);
    this.name = "PayloadTooLargeError";
  }
}

/** 405: the method is not one the endpoint serves; `allow` lists those (default POST). */
export class MethodNotAllowedError extends HttpError {
  constructor(method: string, allow = "POST", reason?: string) {
    super(405, "method_not_allowed", reason ?? `method ${method} is not allowed; use ${allow}`, {
      headers: { allow },
    });
    this.name = "MethodNotAllowedError";
  }
}

/** The path a refusal names when the request body as a whole is unreadable. */
export const BODY_PATH = "(body)";

/** 400: the body is not JSON. */
export class MalformedJsonError extends HttpError {
  constructor(cause: unknown) {
    super(400, "malformed_json", "request body is not valid JSON", {
      cause,
      details: [{ path: BODY_PATH, message: "not valid UTF-8 JSON" }],
    });
    this.name = "MalformedJsonError";
  }
}

/** 400: the JSON does not match the expected schema; `details` lists the issues. */
export class InvalidPayloadError extends HttpError {
  constructor(issues: { path: string; message: string }[]) {
    super(400, "invalid_payload", "request body does not match the webhook schema", {
      details: issues,
    });
    this.name = "InvalidPayloadError";
  }
}

/**
 * The path of an absolute URL string (`http://h/a/b?x#y` → `/a/b`), cut without parsing the URL:
 * the runtime hands every request its URL already normalised.
 */
export function urlPath(url: string): string {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (start === -1) return "/";
  let end = url.indexOf("?", start);
  if (end === -1) end = url.indexOf("#", start);
  return end === -1 ? url.slice(start) : url.slice(start, end);
}

/**
 * One query parameter of a URL string, cleaned by the shared sanitiser, or null; only a URL with
 * a query is parsed.
 */
export function queryParam(url: string, name: string): string | null {
  const start = url.indexOf("?");
  if (start === -1) return null;
  const hash = url.indexOf("#", start);
  return cleanParam(
    new URLSearchParams(url.slice(start + 1, hash === -1 ? undefined : hash)),
    name,
  );
}

/** Builds a JSON response. */
export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** Builds the JSON error response of an {@link HttpError}. */
export function errorResponse(error: HttpError): Response {
  const body: Record<string, unknown> = {
    success: false,
    error: error.code,
    message: error.message,
  };
  if (error.details !== undefined) body.issues = error.details;
  return jsonResponse(error.status, body, error.headers);
}

/**
 * Reads a request body into memory, refusing more than `limit` bytes with
 * {@link PayloadTooLargeError}. With a Content-Length (the usual webhook) the bytes are read in one
 * `arrayBuffer()` call, without touching `request.body` (its getter wraps an already-buffered body
 * in a stream); only a body of unknown length (chunked) is streamed, counting as it goes.
 */
export async function readBodyLimited(
  request: Request,
  limit: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^[0-9]+$/.test(declared)) {
    if (Number(declared) > limit) throw new PayloadTooLargeError(limit);
    // The runtime holds the connection to the declared length, so one read is enough.
    const body = new Uint8Array(await request.arrayBuffer());
    if (body.byteLength > limit) throw new PayloadTooLargeError(limit);
    return body;
  }
  const stream = request.body;
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new PayloadTooLargeError(limit);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return new Uint8Array(chunks[0]);
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
