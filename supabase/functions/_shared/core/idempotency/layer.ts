/**
 * The Idempotency-Key layer: one entry point, {@link IdempotencyLayer.handle}, called by a function
 * after it authenticated the request. It owns the key's lifecycle:
 *
 *   read key (400 if malformed) → Map or Redis hit? replay → begin (lookup-or-lock, one round trip)
 *   → replay | 422 reused | 409 in progress | started → run the function → complete or release.
 *
 * Kept and replayed: 2xx responses only. Released (deleted, so the retry runs again): every other
 * status — 4xx means the request was refused before it did anything (validation, unknown format),
 * 5xx means it failed (e.g. 503 database down). 401 never reaches the layer (authentication
 * comes first). A store outage answers 503 `idempotency_unavailable` and runs nothing: processing
 * without the layer would break the promise a key makes (a second send, a second ledger entry).
 */
import { HalfOpenCircuit } from "../circuit.ts";
import { errorResponse, HttpError } from "../http.ts";
import type { Logger } from "../log.ts";
import { cleanText } from "../sanitize.ts";
import { waitUntil } from "../wait_until.ts";
import type { IdempotencyConfig } from "./config.ts";
import {
  IdempotencyKeyInProgressError,
  IdempotencyKeyReusedError,
  IdempotencyUnavailableError,
} from "./errors.ts";
import { fingerprintRequest } from "./fingerprint.ts";
import { IDEMPOTENCY_HEADERS, readIdempotencyKey, STANDARD_WEBHOOKS_ID_HEADER } from "./key.ts";
import { MemoryResponseCache } from "./memory_cache.ts";
import { PostgresIdempotencyStore } from "./postgres_store.ts";
import type { IdempotencyStore, SharedResponseCache, StoredResponse } from "./store.ts";
import { UpstashResponseCache } from "./upstash_cache.ts";

/** The header set on replayed responses. */
export const REPLAYED_HEADER = "Idempotent-Replayed";

/** One authenticated request, as the layer needs it. */
export interface IdempotentRequest {
  /** The function's name (first part of the key's scope). */
  functionName: string;
  /**
   * The verified caller (second part of the scope): the auth scheme whose secret verified a
   * webhook (e.g. `hmac-sha256`), or `user:<JWT sub>` for user-facing functions.
   */
  caller: string;
  /** The verified auth scheme; `standard-webhooks` makes the signed `webhook-id` a key. */
  scheme?: string;
  /** Stored for per-type statistics, e.g. `membership`, `messages`, `send-batch`. */
  webhookType: string;
  /** The client's address, when known (defaults to the first `X-Forwarded-For` entry). */
  sourceIp?: string;
  request: Request;
  /** The raw body bytes the function already read (hashed, never stored). */
  rawBody: Uint8Array;
}

/** Whether a response with this status is kept and replayed. */
export function isReplayableStatus(status: number): boolean {
  return status >= 200 && status < 300;
}

/** Dependencies of {@link IdempotencyLayer}. */
export interface IdempotencyLayerOptions {
  config: IdempotencyConfig;
  /** Undefined when the layer is off (disabled, or no database to keep records in). */
  store?: IdempotencyStore;
  /** Completed responses shared by every instance (Upstash Redis); optional. */
  shared?: SharedResponseCache;
  /** After a shared-cache failure, the first request this much later tries it again (ms). */
  sharedProbeIntervalMs?: number;
  logger: Logger;
  /** Why the layer is off, for health responses. */
  offReason?: string;
  now?: () => number;
}

/** The shared Idempotency-Key layer of the functions. */
export class IdempotencyLayer {
  readonly #config: IdempotencyConfig;
  readonly #store?: IdempotencyStore;
  readonly #cache?: MemoryResponseCache;
  readonly #shared?: SharedResponseCache;
  readonly #sharedCircuit: HalfOpenCircuit;
  readonly #logger: Logger;
  readonly #offReason?: string;
  readonly #now: () => number;
  readonly #counters = {
    started: 0,
    replayedFromDatabase: 0,
    replayedFromShared: 0,
    replayedFromMemory: 0,
    inProgress: 0,
    reused: 0,
    sharedErrors: 0,
  };

  constructor(options: IdempotencyLayerOptions) {
    this.#config = options.config;
    this.#store = options.config.enabled ? options.store : undefined;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#offReason = !options.config.enabled
      ? "IDEMPOTENCY_ENABLED=false"
      : options.store
      ? undefined
      : options.offReason ?? "no store";
    this.#shared = this.#store ? options.shared : undefined;
    this.#sharedCircuit = new HalfOpenCircuit(options.sharedProbeIntervalMs ?? 250, this.#now);
    if (this.#store && options.config.memoryMaxKeys > 0) {
      this.#cache = new MemoryResponseCache(options.config.memoryMaxKeys, this.#now);
    }
  }

  /** Replays the caches served, not yet added to the records (key → count). */
  readonly #replays = new Map<string, { scope: string; key: string; count: number }>();
  #flushing?: Promise<void>;

  /**
   * Counts a replay a cache served into the record's `replay_count` (the statistics' "replays
   * served"), batched: at most one write a second, after the responses (`waitUntil`), never on a
   * replay's path.
   */
  #countReplay(scope: string, key: string): void {
    const id = `${scope}\u0000${key}`;
    const entry = this.#replays.get(id);
    if (entry) entry.count++;
    else if (this.#replays.size < 10_000) this.#replays.set(id, { scope, key, count: 1 });
    if (this.#flushing) return;
    this.#flushing = new Promise<void>((resolve) => setTimeout(resolve, 1000))
      .then(() => this.flushReplayCounts())
      .finally(() => {
        this.#flushing = undefined;
      });
    waitUntil(this.#flushing);
  }

  /** Writes the replay counts gathered so far (shutdown and tests; otherwise once a second). */
  async flushReplayCounts(): Promise<void> {
    if (this.#replays.size === 0 || !this.#store) return;
    const batch = [...this.#replays.values()];
    this.#replays.clear();
    try {
      await this.#store.countReplays(batch);
    } catch (error) {
      // Statistics only: a lost count never changes what a request is answered.
      this.#logger.warn("could not record cached replays", { cause: causeOf(error) });
    }
  }

  /** Whether requests with a key are deduplicated. */
  get enabled(): boolean {
    return this.#store !== undefined;
  }

  /**
   * Runs `run` at most once per (function, caller, key) within the TTL and returns its response,
   * or the answer for a retry: the stored response with `Idempotent-Replayed: true`, 409, 422,
   * 400 for a malformed key, 503 when the store is down. Requests without a key just run.
   */
  async handle(input: IdempotentRequest, run: () => Promise<Response>): Promise<Response> {
    if (!this.#store) return await run();
    let found;
    try {
      found = readIdempotencyKey(input.request.headers, input.scheme);
    } catch (error) {
      if (error instanceof HttpError) return errorResponse(error);
      throw error;
    }
    if (!found) return await run();

    const scope = `${input.functionName}:${input.caller}`;
    const { key } = found;
    const fingerprint = fingerprintRequest(input.request.method, input.request.url, input.rawBody);
    const cached = this.#cache?.get(scope, key, fingerprint);
    if (cached) {
      this.#counters.replayedFromMemory++;
      this.#countReplay(scope, key);
      return replay(cached);
    }
    const shared = await this.#sharedGet(scope, key, fingerprint);
    if (shared) {
      this.#counters.replayedFromShared++;
      this.#countReplay(scope, key);
      this.#cache?.set(scope, key, fingerprint, shared.response, shared.expiresAt);
      return replay(shared.response);
    }

    const startedAt = this.#now();
    let begun;
    try {
      begun = await this.#store.begin({
        scope,
        key,
        webhookType: input.webhookType,
        fingerprint,
        leaseMs: this.#config.leaseSeconds * 1000,
        ttlSeconds: this.#config.ttlSeconds,
        sourceIp: input.sourceIp ?? sourceIpOf(input.request),
      });
    } catch (error) {
      this.#logger.error("idempotency store unavailable; request not run", {
        cause: causeOf(error),
      });
      return errorResponse(new IdempotencyUnavailableError(error));
    }
    switch (begun.kind) {
      case "replay":
        // The next retry of this key is served by the caches.
        this.#counters.replayedFromDatabase++;
        this.#cache?.set(scope, key, fingerprint, begun.response, begun.expiresAt);
        await this.#sharedSet(scope, key, fingerprint, begun.response, begun.expiresAt);
        return replay(begun.response);
      case "mismatch":
        this.#counters.reused++;
        return errorResponse(new IdempotencyKeyReusedError());
      case "in_progress":
        this.#counters.inProgress++;
        return errorResponse(
          new IdempotencyKeyInProgressError(Math.max(1, Math.ceil(begun.retryAfterMs / 1000))),
        );
    }

    this.#counters.started++;
    const token = begun.token;
    let response: Response;
    try {
      response = await run();
    } catch (error) {
      await this.#release(scope, key, token);
      throw error;
    }
    const body = new Uint8Array(await response.arrayBuffer());
    const stored: StoredResponse = {
      status: response.status,
      contentType: response.headers.get("content-type"),
      body,
    };
    if (isReplayableStatus(response.status)) {
      try {
        const kept = await this.#store.complete(scope, key, token, stored);
        if (kept) {
          const expiresAt = startedAt + this.#config.ttlSeconds * 1000;
          this.#cache?.set(scope, key, fingerprint, stored, expiresAt);
          await this.#sharedSet(scope, key, fingerprint, stored, expiresAt);
        } else this.#logger.warn("idempotency lease was taken over before completion");
      } catch (error) {
        // The response stands; the record stays in progress until its lease runs out, then a
        // retry runs again (the functions' own exactly-once rules make that safe).
        this.#logger.error("idempotency response not stored", { cause: causeOf(error) });
      }
    } else {
      await this.#release(scope, key, token);
    }
    return new Response(body, { status: response.status, headers: response.headers });
  }

  /** The layer's state for health responses: on/off, header names, TTL, lease, counters. */
  describe(): Record<string, unknown> {
    return {
      enabled: this.enabled,
      ...(this.#offReason ? { reason: this.#offReason } : {}),
      headers: [...IDEMPOTENCY_HEADERS, `${STANDARD_WEBHOOKS_ID_HEADER} (Standard Webhooks)`],
      replayedHeader: REPLAYED_HEADER,
      ttlSeconds: this.#config.ttlSeconds,
      leaseSeconds: this.#config.leaseSeconds,
      store: this.#store?.name ?? null,
      memory: this.#cache?.stats() ?? null,
      shared: this.#shared
        ? {
          name: this.#shared.name,
          state: this.#sharedCircuit.open ? "degraded" : "ok",
        }
        : null,
      counters: { ...this.#counters },
    };
  }

  /** Closes the store. */
  async close(): Promise<void> {
    await this.#flushing;
    await this.flushReplayCounts();
    await this.#store?.close();
  }

  async #sharedGet(scope: string, key: string, fingerprint: string) {
    if (!this.#shared || !this.#sharedCircuit.allow()) return undefined;
    try {
      const found = await this.#shared.get(scope, key, fingerprint);
      this.#sharedCircuit.succeeded();
      return found;
    } catch (error) {
      this.#sharedFailed(error);
      return undefined;
    }
  }

  async #sharedSet(
    scope: string,
    key: string,
    fingerprint: string,
    response: StoredResponse,
    expiresAt: number,
  ): Promise<void> {
    if (!this.#shared || !this.#sharedCircuit.allow()) return;
    try {
      await this.#shared.set(scope, key, fingerprint, response, expiresAt);
      this.#sharedCircuit.succeeded();
    } catch (error) {
      this.#sharedFailed(error);
    }
  }

  /** A shared-cache failure is never an answer: the database decides until a probe finds it back. */
  #sharedFailed(error: unknown): void {
    this.#counters.sharedErrors++;
    this.#sharedCircuit.failed();
    this.#logger.warn("idempotency shared cache unavailable; asking the database", {
      cause: causeOf(error),
    });
  }

  async #release(scope: string, key: string, token: string): Promise<void> {
    try {
      await this.#store!.release(scope, key, token);
    } catch (error) {
      this.#logger.error("idempotency record not released; it frees at lease expiry", {
        cause: causeOf(error),
      });
    }
  }
}

/** Builds the layer from its settings; off when disabled or without a database URL. */
export function createIdempotencyLayer(
  config: IdempotencyConfig,
  options: {
    databaseUrl?: string;
    poolMax?: number;
    logger: Logger;
    /** Upstash Redis for the shared response cache (the functions' `UPSTASH_REDIS_REST_*`). */
    redis?: { url: string; token: string; timeoutMs: number; probeIntervalMs: number };
    /** Prefix of Redis keys (`DEDUP_KEY_PREFIX`). */
    keyPrefix?: string;
  },
): IdempotencyLayer {
  const store = config.enabled && options.databaseUrl
    ? new PostgresIdempotencyStore({
      url: options.databaseUrl,
      poolMax: options.poolMax ?? 2,
      timeoutMs: config.timeoutMs,
    })
    : undefined;
  const shared = store && options.redis
    ? new UpstashResponseCache({
      url: options.redis.url,
      token: options.redis.token,
      timeoutMs: options.redis.timeoutMs,
      keyPrefix: options.keyPrefix ?? "wa-dedup",
    })
    : undefined;
  return new IdempotencyLayer({
    config,
    store,
    shared,
    sharedProbeIntervalMs: options.redis?.probeIntervalMs,
    logger: options.logger,
    offReason: options.databaseUrl ? undefined : "SUPABASE_DB_URL is not set",
  });
}

function replay(stored: StoredResponse): Response {
  const headers: Record<string, string> = { [REPLAYED_HEADER]: "true" };
  if (stored.contentType) headers["content-type"] = stored.contentType;
  return new Response(stored.body.slice(), { status: stored.status, headers });
}

/** The client address the platform's proxy saw: the one header this layer stores. */
function sourceIpOf(request: Request): string | undefined {
  const first = request.headers.get("x-forwarded-for")?.split(",")[0].trim();
  return first ? cleanText(first, 64) || undefined : undefined;
}

function causeOf(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * Runs an authenticated request through the layer when there is one: `run`'s errors become their
 * HTTP responses first, so that the layer sees the status it stores or releases.
 */
export function runIdempotent(
  layer: IdempotencyLayer | undefined,
  request: IdempotentRequest,
  run: () => Promise<Response>,
  toResponse: (error: unknown) => Response,
): Promise<Response> {
  const guarded = () => run().catch(toResponse);
  return layer ? layer.handle(request, guarded) : guarded();
}
