/**
 * The per-instance in-memory tier: a bounded Map of claims with a fixed time to live.
 *
 * Every claim gets the same TTL, so claims expire in the order they were made. A FIFO queue
 * (an array with a moving head) records that order: expired claims are dropped from its head and
 * the oldest claims are evicted when the bound is hit, a constant amount of work per claim however
 * many are live (never a scan of the Map).
 *
 * A held key counts as a duplicate only when the two deliveries are copies of one event (see
 * {@link isCopyOfHeld}): event times within the copy window and, for events with a subject, the
 * same event time (another instance may have had an event of another action of the subject
 * between two different times; the shared tier and the database decide those). What
 * this instance knows of a subject starts at a known claim sequence number; a held claim older
 * than that (the subject's record was evicted) is never answered "duplicate".
 */
import { isCopyOfHeld } from "../copy_window.ts";
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

interface SubjectRecord {
  /** Claims with a sequence number from this one on are all reflected in {@link times}. */
  since: number;
  /** Latest event time per action claimed for the subject. */
  times: Record<string, number>;
}

/** Bounded in-memory claims with FIFO expiry. */
export class MemoryClaimStore implements ClaimStore {
  readonly name = "memory";
  readonly #claims = new Map<string, Claim>();
  readonly #subjects = new Map<string, SubjectRecord>();
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
  claimOne(key: string, at: number, subject?: string, action?: string): boolean {
    const now = this.#now();
    this.#dropExpired(now);
    const held = this.#claims.get(key);
    const record = subject === undefined ? undefined : this.#subjects.get(subject);
    if (held !== undefined && held.expiresAt > now) {
      const known = subject === undefined || (record !== undefined && record.since <= held.seq);
      // For a subject, only a delivery with the held event time is surely a copy here: a
      // distinct event of another action between two times may have gone to another instance
      // (join, leave elsewhere, rejoin 600 ms later), which only the shared tier and the database
      // know of. Other times go on to them.
      const sure = subject === undefined || held.at === at;
      if (known && sure && isCopyOfHeld(held.at, at, this.#burstMs, action, record?.times)) {
        return false;
      }
    }
    const seq = ++this.#seq;
    const expiresAt = now + this.#ttlMs;
    this.#claims.set(key, { expiresAt, at, seq });
    this.#queue.push({ key, seq, expiresAt });
    if (subject !== undefined && action !== undefined) this.#record(subject, action, at, seq);
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
      requests.map((r) => this.claimOne(r.key, r.at, r.subject, r.action) ? "claimed" : "held"),
    );
  }

  /** Memory claims need no confirmation beyond {@link rebase}: a copy in flight here is a copy. */
  confirm(claims: readonly ClaimRequest[]): Promise<void> {
    for (const { key, at } of claims) this.rebase(key, at);
    return Promise.resolve();
  }

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

  #record(subject: string, action: string, at: number, seq: number): void {
    let record = this.#subjects.get(subject);
    if (record === undefined) {
      if (this.#subjects.size >= this.#maxKeys) {
        // Forget the oldest subject; its held claims are then never answered "duplicate".
        const oldest = this.#subjects.keys().next().value;
        if (oldest !== undefined) this.#subjects.delete(oldest);
      }
      record = { since: seq, times: {} };
      this.#subjects.set(subject, record);
    }
    const known = record.times[action];
    if (known === undefined || at > known) record.times[action] = at;
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
