/**
 * A bounded per-instance Map of completed responses, so a retry that reaches the same instance is
 * replayed with no database round trip. Only completed (never in-progress) records enter it; the
 * table stays the record. Entries leave at their expiry, oldest first at the bound.
 */
import type { StoredResponse } from "./store.ts";

interface Entry {
  fingerprint: string;
  response: StoredResponse;
  expiresAt: number;
}

/** The per-instance cache tier of the idempotency layer. */
export class MemoryResponseCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxKeys: number;
  readonly #now: () => number;
  hits = 0;

  constructor(maxKeys: number, now: () => number = Date.now) {
    this.#maxKeys = maxKeys;
    this.#now = now;
  }

  /** The stored response for (scope, key) when its fingerprint matches and it has not expired. */
  get(scope: string, key: string, fingerprint: string): StoredResponse | undefined {
    const id = `${scope}\u0000${key}`;
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(id);
      return undefined;
    }
    if (entry.fingerprint !== fingerprint) return undefined;
    this.hits++;
    return entry.response;
  }

  /** Remembers a completed response until `expiresAt` (epoch ms). */
  set(
    scope: string,
    key: string,
    fingerprint: string,
    response: StoredResponse,
    expiresAt: number,
  ) {
    if (this.#maxKeys <= 0) return;
    const id = `${scope}\u0000${key}`;
    this.#entries.delete(id);
    while (this.#entries.size >= this.#maxKeys) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    this.#entries.set(id, { fingerprint, response, expiresAt });
  }

  /** Size, bound and hits, for health responses. */
  stats(): { size: number; maxKeys: number; hits: number } {
    return { size: this.#entries.size, maxKeys: this.#maxKeys, hits: this.hits };
  }
}
