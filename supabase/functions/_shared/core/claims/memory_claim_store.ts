/**
 * The per-instance in-memory tier: a bounded Map of claims with a fixed time to live.
 *
 * Every claim gets the same TTL, so claims expire in the order they were made. A FIFO queue
 * (an array with a moving head) records that order: expired claims are dropped from its head and
 * the oldest claims are evicted when the bound is hit, a constant amount of work per claim however
 * many are live (never a scan of the Map).
 *
 * One instance cannot see what other instances applied, so a held key only counts as a duplicate
 * when the two deliveries' event times lie within `burstMs` of each other: the copies that
 * gateway sessions send together, or retries carrying the same source timestamp. A later event
 * with the same key (a rejoin whose leave went to another instance) goes on to the shared tiers.
 */
import { isCopy } from "../copy_window.ts";
import type { ClaimRequest, ClaimResult, ClaimStore } from "./claim_store.ts";

/** Options of {@link MemoryClaimStore}. */
export interface MemoryClaimStoreOptions {
  /** Most claims held at once; the oldest are evicted beyond it. */
  maxKeys: number;
  /** How long a claim lasts, in milliseconds. */
  ttlMs: number;
  /** Event times closer than this are copies of one event (the copy window); default 1000 ms. */
  burstMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Claim {
  expiresAt: number;
  at: number;
  /** Sequence number of the queue entry that made this claim. */
  seq: number;
}

interface QueueEntry {
  key: string;
  seq: number;
  expiresAt: number;
}

/** Bounded in-memory claims with FIFO expiry. */
export class MemoryClaimStore implements ClaimStore {
  readonly name = "memory";
  readonly #claims = new Map<string, Claim>();
  #queue: QueueEntry[] = [];
  #head = 0;
  #seq = 0;
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
  claimOne(key: string, at: number): boolean {
    const now = this.#now();
    this.#dropExpired(now);
    const held = this.#claims.get(key);
    if (held !== undefined && held.expiresAt > now && isCopy(held.at, at, this.#burstMs)) {
      return false;
    }
    const seq = ++this.#seq;
    const expiresAt = now + this.#ttlMs;
    this.#claims.set(key, { expiresAt, at, seq });
    this.#queue.push({ key, seq, expiresAt });
    while (this.#claims.size > this.#maxKeys && this.#head < this.#queue.length) {
      if (this.#dropHead()) this.#evictions++;
    }
    this.#compact();
    return true;
  }

  /**
   * Moves a claim's event time to the one the database matched it to (the original event's, for
   * a copy), so that this tier measures the copy window from the same instant as the database.
   */
  rebase(key: string, at: number): void {
    const claim = this.#claims.get(key);
    if (claim) claim.at = at;
  }

  /** Whether a key is currently claimed. */
  has(key: string): boolean {
    const held = this.#claims.get(key);
    return held !== undefined && held.expiresAt > this.#now();
  }

  claim(requests: readonly ClaimRequest[]): Promise<ClaimResult[]> {
    return Promise.resolve(
      requests.map((r) => this.claimOne(r.key, r.at) ? "claimed" : "held"),
    );
  }

  /** Memory claims need no confirmation: a copy in flight on this instance is a copy. */
  confirm(_claims: readonly ClaimRequest[]): void {}

  /** Releases claims synchronously. */
  releaseSync(keys: readonly string[]): void {
    for (const key of keys) this.#claims.delete(key);
  }

  release(keys: readonly string[]): Promise<void> {
    this.releaseSync(keys);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Number of live claims (expired ones are dropped on the next claim). */
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
    while (this.#head < this.#queue.length && this.#queue[this.#head].expiresAt <= now) {
      this.#dropHead();
    }
  }

  /** Removes the oldest queue entry and its claim if still current; true when a claim went. */
  #dropHead(): boolean {
    const entry = this.#queue[this.#head++];
    if (entry === undefined) return false;
    const claim = this.#claims.get(entry.key);
    if (claim?.seq !== entry.seq) return false; // re-claimed, freed or released since
    this.#claims.delete(entry.key);
    return true;
  }

  /** Keeps the queue's dead prefix and stale entries from growing without bound. */
  #compact(): void {
    const live = this.#queue.length - this.#head;
    if (this.#head > 1024 && this.#head > live) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (live > 2 * this.#maxKeys + 1024) {
      // Released and re-claimed keys leave stale entries behind: keep only current ones.
      this.#queue = this.#queue.slice(this.#head).filter((e) =>
        this.#claims.get(e.key)?.seq === e.seq
      );
      this.#head = 0;
    }
  }
}
