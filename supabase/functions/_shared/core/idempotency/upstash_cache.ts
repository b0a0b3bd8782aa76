/**
 * {@link SharedResponseCache} in Upstash Redis: completed responses of every instance, so a retry
 * that reaches another instance (or a cold start) is replayed with one Redis GET and no database
 * round trip. One key per (scope, key), expiring with the record; value = JSON of fingerprint,
 * status, content type, base64 body and expiry.
 */
import { Buffer } from "node:buffer";
import type { Redis } from "@upstash/redis";
import { createUpstashClient } from "../upstash_client.ts";
import type { SharedResponseCache, StoredResponse } from "./store.ts";

/** Options of {@link UpstashResponseCache}. */
export interface UpstashResponseCacheOptions {
  url: string;
  token: string;
  /** Bound on one round trip. */
  timeoutMs: number;
  /** Prefix of every key (the project's `DEDUP_KEY_PREFIX`); `:idem:` is appended. */
  keyPrefix: string;
}

interface CachedValue {
  f: string;
  s: number;
  c: string | null;
  b: string;
  e: number;
}

/** Completed responses in Upstash Redis through `@upstash/redis`. */
export class UpstashResponseCache implements SharedResponseCache {
  readonly name = "redis";
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(options: UpstashResponseCacheOptions) {
    this.#prefix = `${options.keyPrefix}:idem:`;
    this.#redis = createUpstashClient(options.url, options.token, options.timeoutMs);
  }

  async get(scope: string, key: string, fingerprint: string) {
    const raw = await this.#redis.get<string>(this.#key(scope, key));
    if (typeof raw !== "string") return undefined;
    const value = JSON.parse(raw) as CachedValue;
    if (value.f !== fingerprint || value.e <= Date.now()) return undefined;
    return {
      response: {
        status: value.s,
        contentType: value.c,
        body: new Uint8Array(Buffer.from(value.b, "base64")),
      },
      expiresAt: value.e,
    };
  }

  async set(
    scope: string,
    key: string,
    fingerprint: string,
    response: StoredResponse,
    expiresAt: number,
  ): Promise<void> {
    const ttlMs = expiresAt - Date.now();
    if (ttlMs <= 0) return;
    const value: CachedValue = {
      f: fingerprint,
      s: response.status,
      c: response.contentType,
      b: Buffer.from(response.body).toString("base64"),
      e: expiresAt,
    };
    await this.#redis.set(this.#key(scope, key), JSON.stringify(value), { px: ttlMs });
  }

  #key(scope: string, key: string): string {
    return `${this.#prefix}${scope}:${key}`;
  }
}
