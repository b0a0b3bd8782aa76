/**
 * The answers of the idempotency layer that are not the function's own, each named for what went
 * wrong. All are {@link HttpError}s, so `errorResponse` renders them as the project's JSON errors.
 */
import { HttpError } from "../http.ts";

/** 400 `invalid_idempotency_key`: the header is present but not a valid key; nothing is done. */
export class InvalidIdempotencyKeyError extends HttpError {
  constructor(header: string, reason: string) {
    super(
      400,
      "invalid_idempotency_key",
      `${header} ${reason}: use 1-255 characters of A-Z a-z 0-9 . _ : - (a UUID is recommended)`,
      { details: [{ path: header, message: reason }] },
    );
    this.name = "InvalidIdempotencyKeyError";
  }
}

/** 409 `idempotency_key_in_progress`: another attempt with this key is running. */
export class IdempotencyKeyInProgressError extends HttpError {
  constructor(retryAfterSeconds: number) {
    super(
      409,
      "idempotency_key_in_progress",
      "a request with this Idempotency-Key is still being processed; retry later",
      { headers: { "retry-after": String(retryAfterSeconds) } },
    );
    this.name = "IdempotencyKeyInProgressError";
  }
}

/** 422 `idempotency_key_reused`: the key was first used for a different request. */
export class IdempotencyKeyReusedError extends HttpError {
  constructor() {
    super(
      422,
      "idempotency_key_reused",
      "this Idempotency-Key was used for a different request (method, path or body)",
    );
    this.name = "IdempotencyKeyReusedError";
  }
}

/** 503 `idempotency_unavailable`: the key could not be looked up; nothing was done. */
export class IdempotencyUnavailableError extends HttpError {
  constructor(cause?: unknown) {
    super(
      503,
      "idempotency_unavailable",
      "the idempotency store is unavailable; nothing was done, retry later",
      { headers: { "retry-after": "5" }, cause },
    );
    this.name = "IdempotencyUnavailableError";
  }
}
