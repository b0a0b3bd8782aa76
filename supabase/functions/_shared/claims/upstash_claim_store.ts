/**
 * The shared tier: claims in Upstash Redis with `SET key 1 NX PX ttl`, so that other instances
 * and cold starts see them. All claims of one webhook go in one pipeline (one round trip).
 */
import { Redis } from "@upstash/redis";
import {
  type ClaimRequest,
  type ClaimResult,
  type ClaimStore,
  ClaimStoreUnavailableError,
} from "./claim_store.ts";

/** Options of {@link UpstashClaimStore}. */
export interface UpstashClaimStoreOptions {
  /** Upstash REST URL (`UPSTASH_REDIS_REST_URL`). */
  url: string;
  /** Upstash REST token (`UPSTASH_REDIS_REST_TOKEN`). */
  token: string;
  /** How long a claim lasts, in milliseconds. */
  ttlMs: number;
  /** Bound on one round trip; past it the tier counts as unavailable. */
  timeoutMs: number;
  /** Prefix of every key. */
  keyPrefix: string;
}

/** Claims in Upstash Redis through `@upstash/redis`. */
export class UpstashClaimStore implements ClaimStore {
  readonly name = "redis";
  readonly #redis: Redis;
  readonly #ttlMs: number;
  readonly #prefix: string;

  constructor(options: UpstashClaimStoreOptions) {
    this.#ttlMs = options.ttlMs;
    this.#prefix = `${options.keyPrefix}:`;
    this.#redis = new Redis({
      url: options.url,
      token: options.token,
      // A fresh signal per request. A shared AbortSignal would make the client answer an aborted
      // request with a fake `{ result: "Aborted" }` instead of throwing.
      signal: () => AbortSignal.timeout(options.timeoutMs),
      retry: { retries: 0 },
      automaticDeserialization: false,
      enableTelemetry: false,
    });
  }

  async claim(requests: readonly ClaimRequest[]): Promise<ClaimResult[]> {
    if (requests.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const request of requests) {
      pipeline.set(this.#prefix + request.key, "1", { nx: true, px: this.#ttlMs });
      if (request.frees?.length) pipeline.del(...request.frees.map((key) => this.#prefix + key));
    }
    let replies: { error?: string; result?: unknown }[];
    try {
      replies = await pipeline.exec({ keepErrors: true });
    } catch (error) {
      throw new ClaimStoreUnavailableError(this.name, { cause: withoutCommand(error) });
    }
    const results: ClaimResult[] = [];
    let i = 0;
    for (const request of requests) {
      const reply = replies[i];
      i += request.frees?.length ? 2 : 1;
      if (!reply || reply.error) {
        throw new ClaimStoreUnavailableError(this.name, { cause: new Error(reply?.error) });
      }
      if (reply.result === "OK") results.push("claimed");
      else if (reply.result === null) results.push("held");
      else {
        throw new ClaimStoreUnavailableError(this.name, {
          cause: new Error(`unexpected SET reply ${JSON.stringify(reply.result)}`),
        });
      }
    }
    return results;
  }

  async release(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      await this.#redis.del(...keys.map((key) => this.#prefix + key));
    } catch (error) {
      throw new ClaimStoreUnavailableError(this.name, { cause: withoutCommand(error) });
    }
  }
}

/** Drops the `command was: [...]` part of client errors: it holds keys, hence phone numbers. */
function withoutCommand(error: unknown): Error {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new Error(message.split(", command was:")[0]);
}
