/**
 * The per-instance in-memory tier: a bounded Map of claims with a fixed time to live.
 *
 * Every claim gets the same TTL, so the Map's insertion order is also its expiry order: expired
 * claims are dropped from the head of the Map, one step per expired entry (amortised O(1) per
 * request, never a scan of all entries), and the oldest claims are evicted when the bound is hit.
 *
 * One instance cannot see what other instances applied, so a held key only counts as a duplicate
 * when the two deliveries' event times lie within `burstMs` of each other: the copies that
 * gateway sessions send together, or retries carrying the same source timestamp. A later event
 * with the same key (a rejoin whose leave went to another instance) goes on to the shared tiers.
 */
import type { ClaimRequest, ClaimResult, ClaimStore } from "./claim_store.ts";

/** Options of {@link MemoryClaimStore}. */
export interface MemoryClaimStoreOptions {
  /** Most claims held at once; the oldest are evicted beyond it. */
  maxKeys: number;
  /** How long a claim lasts, in milliseconds. */
  ttlMs: number;
  /** Event times closer than this are copies of one event; defaults to 1000 ms. */
  burstMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Claim {
  expiresAt: number;
  at: number;
}

/** Bounded in-memory claims with FIFO expiry. */
export class MemoryClaimStore implements ClaimStore {
  readonly name = "memory";
  readonly #claims = new Map<string, Claim>();
  readonly #maxKeys: number;
  readonly #ttlMs: number;
  readonly #burstMs: number;
  readonly #now: () => number;
  #evictions = 0;

  constructor(options: MemoryClaimStoreOptions) {
    if (!(options.maxKeys >= 1)) throw new RangeError("maxKeys must be at least 1");
    this.#maxKeys = options.maxKeys;
    this.#ttlMs = options.ttlMs;
    this.#burstMs = options.burstMs ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Claims one key synchronously; true when newly claimed, false when a copy holds it. */
  claimOne(key: string, at: number, frees?: readonly string[]): boolean {
    const now = this.#now();
    this.#dropExpired(now);
    const held = this.#claims.get(key);
    if (held !== undefined && held.expiresAt > now && Math.abs(held.at - at) < this.#burstMs) {
      return false;
    }
    if (frees) { for (const other of frees) this.#claims.delete(other); }
    // Delete first so that a re-claimed key moves to the tail and the order stays by expiry.
    this.#claims.delete(key);
    this.#claims.set(key, { expiresAt: now + this.#ttlMs, at });
    if (this.#claims.size > this.#maxKeys) {
      this.#claims.delete(this.#claims.keys().next().value!);
      this.#evictions++;
    }
    return true;
  }

  /** Whether a key is currently claimed. */
  has(key: string): boolean {
    const held = this.#claims.get(key);
    return held !== undefined && held.expiresAt > this.#now();
  }

  claim(requests: readonly ClaimRequest[]): Promise<ClaimResult[]> {
    return Promise.resolve(
      requests.map((r) => this.claimOne(r.key, r.at, r.frees) ? "claimed" : "held"),
    );
  }

  /** Releases claims synchronously. */
  releaseSync(keys: readonly string[]): void {
    for (const key of keys) this.#claims.delete(key);
  }

  release(keys: readonly string[]): Promise<void> {
    this.releaseSync(keys);
    return Promise.resolve();
  }

  /** Number of claims resident now (expired ones at the head included until the next call). */
  get size(): number {
    return this.#claims.size;
  }

  /** Counters for the health response and the benchmark. */
  stats(): { size: number; maxKeys: number; ttlMs: number; burstMs: number; evictions: number } {
    return {
      size: this.#claims.size,
      maxKeys: this.#maxKeys,
      ttlMs: this.#ttlMs,
      burstMs: this.#burstMs,
      evictions: this.#evictions,
    };
  }

  #dropExpired(now: number): void {
    for (const [key, claim] of this.#claims) {
      if (claim.expiresAt > now) return;
      this.#claims.delete(key);
    }
  }
}
