/**
 * The claim → apply → release/confirm lifecycle that gives each real event exactly one effect,
 * for any kind of event with a key and a time (group memberships, messages, statuses).
 *
 * 0. An event older than the ordering horizon is `stale` before any tier: it takes no claim, in
 *    memory or Redis, and never reaches the database, so a captured old delivery replayed later
 *    changes nothing.
 * 1. Copies held by the per-instance memory tier (inside this webhook or not) are duplicates.
 * 2. The shared tier (Upstash Redis) is asked next, in one round trip for the whole webhook. Only
 *    a claim confirmed after the database had the event, of which this delivery is a copy, counts
 *    as "duplicate"; a claim another instance has in flight is waited for briefly; anything else
 *    (a claim left by an instance that died) sends the event on to the database. Errors and
 *    timeouts are never read as "duplicate": the webhook goes on to the database (fail-open), and
 *    after a failure the tier is skipped until one request, a probe interval later, finds it back
 *    (a half-open circuit).
 * 3. The database applies the remaining events in one round trip, writing only real changes; it
 *    recognises copies itself too, whatever order they arrive in.
 * 4. When applying fails, every claim taken in steps 1–2 is released, so the sender's retry is
 *    processed, and the repository's error reaches the caller. When it works, the shared claims are
 *    confirmed after the response (`waitUntil`), so copies reaching other instances later cost no
 *    database round trip.
 */
import { hash as sha256 } from "fast-sha256";
import { HalfOpenCircuit } from "./circuit.ts";
import type { ClaimRequest, ClaimStore } from "./claims/claim_store.ts";
import type { MemoryClaimStore } from "./claims/memory_claim_store.ts";
import type { Logger } from "./log.ts";
import { waitUntil } from "./wait_until.ts";

/** What the database did with one event. Function-specific outcomes extend these. */
export type ApplyOutcome = "applied" | "unchanged" | "stale";

/** What every outcome can be: the database's, or a cache's "duplicate". */
export type EventOutcome = ApplyOutcome | "duplicate";

/** One event's result from a repository. */
export interface AppliedEvent {
  outcome: ApplyOutcome;
  /** Time of the distinct event the database matched this one to (its own, or the original's). */
  referenceAt: number;
  /**
   * The identity the event was applied to, when the SQL function returns one (membership: a LID
   * resolves to its phone once the pair is known).
   */
  participant?: string;
}

/** Applies a webhook's events in one database round trip; one result per event, in order. */
export interface EventRepository<E, R extends AppliedEvent = AppliedEvent> {
  /** Short name for the health response. */
  readonly name: string;
  /** Throws {@link DatabaseUnavailableError} when the database could not apply them. */
  apply(events: readonly E[]): Promise<R[]>;
  /** Closes connections. */
  close(): Promise<void>;
}

/** Raised when the database is unreachable or fails: nothing was written, retry later (503). */
export class DatabaseUnavailableError extends Error {
  constructor(options?: ErrorOptions, message = "database is unavailable") {
    super(message, options);
    this.name = "DatabaseUnavailableError";
  }
}

/** How the lifecycle identifies an event: its key, event time, and optional subject/action. */
export type ClaimOf<E> = (event: E) => ClaimRequest;

/** The result of one event of a webhook. */
export interface EventResult<E, R extends AppliedEvent = AppliedEvent> {
  event: E;
  outcome: EventOutcome;
  /** The tier that decided: `memory`, `redis` or `database`; `horizon` for a too old event. */
  decidedBy: "horizon" | "memory" | "redis" | "database";
  /** The repository's full result, when the database decided. */
  applied?: R;
}

/** The state of the shared tier, as shown by the health response. */
export interface SharedTierHealth {
  configured: boolean;
  state: "ok" | "degraded" | "off";
  consecutiveFailures: number;
  lastError?: string;
  lastFailureAt?: string;
  skippedUntil?: string;
}

/** Options of {@link ExactlyOnceProcessor}. */
export interface ExactlyOnceOptions<E, R extends AppliedEvent> {
  memory: MemoryClaimStore;
  /** The shared claim store (Upstash Redis); undefined when not configured. */
  shared?: ClaimStore;
  repository: EventRepository<E, R>;
  /** The claim (key, time, subject) of an event. */
  claimOf: ClaimOf<E>;
  /** After a shared-tier failure, the first request this much later tries the tier again. */
  sharedProbeIntervalMs: number;
  /** The ordering horizon: events older than this (by claim time) are `stale`; default none. */
  horizonMs?: number;
  logger: Logger;
  now?: () => number;
}

/** Runs the tiers for the events of one webhook. */
export class ExactlyOnceProcessor<E, R extends AppliedEvent = AppliedEvent> {
  readonly #o: ExactlyOnceOptions<E, R>;
  readonly #now: () => number;
  #failures = 0;
  #lastError?: string;
  #lastFailureAt?: number;
  readonly #circuit: HalfOpenCircuit;

  constructor(options: ExactlyOnceOptions<E, R>) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#circuit = new HalfOpenCircuit(options.sharedProbeIntervalMs, this.#now);
  }

  /**
   * Processes the events of one webhook. Throws the repository's error (after releasing this
   * webhook's claims) when the database could not apply them.
   */
  async process(events: readonly E[]): Promise<EventResult<E, R>[]> {
    const { memory, shared, repository } = this.#o;
    const results = new Array<EventResult<E, R> | undefined>(events.length);
    const claims = events.map(this.#o.claimOf);
    const oldest = this.#now() - (this.#o.horizonMs ?? Number.POSITIVE_INFINITY);

    // 1. The per-instance memory tier. It also answers for copies inside this webhook.
    let pending: number[] = [];
    for (let i = 0; i < events.length; i++) {
      const { key, at, subject, action } = claims[i];
      // 0. Beyond the ordering horizon: stale, before any tier (no claim, no write).
      if (at < oldest) results[i] = { event: events[i], outcome: "stale", decidedBy: "horizon" };
      else if (memory.claimOne(key, at, subject, action)) pending.push(i);
      else results[i] = { event: events[i], outcome: "duplicate", decidedBy: "memory" };
    }

    // 2. The shared tier, one round trip for the whole webhook; fail-open on any error.
    let askedShared = false;
    if (pending.length > 0 && shared && this.#circuit.allow()) {
      try {
        const answers = await shared.claim(pending.map((i) => claims[i]));
        this.#sharedSucceeded();
        askedShared = true;
        pending = pending.filter((i, n) => {
          if (answers[n] !== "held") return true;
          // A copy of an event the database has. Not remembered here, so that the memory tier
          // only ever holds what this instance handled itself.
          memory.releaseSync([claims[i].key]);
          results[i] = { event: events[i], outcome: "duplicate", decidedBy: "redis" };
          return false;
        });
        // "claimed" (ours to apply) and "in-flight" (unconfirmed, maybe by an instance that died,
        // or confirmed for an event this is not a copy of) both go on: the database decides.
      } catch (error) {
        this.#sharedFailed(error);
      }
    }

    this.#logSuppressed(results, claims);

    // 3. The database, one round trip; 4. release every claim if it fails, confirm if it worked.
    if (pending.length === 0) return results as EventResult<E, R>[];
    let applied: R[];
    try {
      applied = await repository.apply(pending.map((i) => events[i]));
    } catch (error) {
      const claimed = pending.map((i) => claims[i].key);
      memory.releaseSync(claimed);
      if (askedShared) await this.#releaseShared(claimed);
      throw error;
    }
    const confirmations = pending.map((i, n) => {
      const result = applied[n];
      results[i] = {
        event: events[i],
        outcome: result.outcome,
        decidedBy: "database",
        applied: result,
      };
      // The caches measure the copy window from the instant the database matched the event to.
      memory.rebase(claims[i].key, result.referenceAt);
      return { ...claims[i], at: result.referenceAt };
    });
    if (askedShared && shared) waitUntil(shared.confirm(confirmations));
    return results as EventResult<E, R>[];
  }

  /** Waits for confirmations still being sent (shutdown and tests). */
  async close(): Promise<void> {
    await this.#o.shared?.close();
  }

  /** The shared tier's state for the health response. */
  sharedHealth(): SharedTierHealth {
    if (!this.#o.shared) return { configured: false, state: "off", consecutiveFailures: 0 };
    const nextProbeAt = this.#circuit.nextProbeAt;
    return {
      configured: true,
      state: this.#failures > 0 ? "degraded" : "ok",
      consecutiveFailures: this.#failures,
      lastError: this.#lastError,
      lastFailureAt: this.#lastFailureAt ? new Date(this.#lastFailureAt).toISOString() : undefined,
      skippedUntil: nextProbeAt === undefined ? undefined : new Date(nextProbeAt).toISOString(),
    };
  }

  /**
   * One debug line per delivery a cache tier suppressed as a copy: the rule and the tier that
   * matched, and a hash of the key (never the key: it holds phone numbers).
   */
  #logSuppressed(
    results: readonly (EventResult<E, R> | undefined)[],
    claims: readonly ClaimRequest[],
  ): void {
    if (!this.#o.logger.enabled("debug")) return;
    results.forEach((result, i) => {
      if (result?.outcome !== "duplicate") return;
      const { key, subject } = claims[i];
      this.#o.logger.debug("duplicate suppressed", {
        rule: subject === undefined ? "same key within the copy window" : SUBJECT_COPY_RULE,
        tier: result.decidedBy,
        kind: key.slice(0, key.indexOf("|")),
        key_hash: keyHash(key),
      });
    });
  }

  #sharedSucceeded(): void {
    this.#circuit.succeeded();
    if (this.#failures > 0) {
      this.#o.logger.info("shared dedup tier recovered", { after_failures: this.#failures });
    }
    this.#failures = 0;
  }

  #sharedFailed(error: unknown): void {
    this.#failures++;
    this.#lastError = describe(error);
    this.#lastFailureAt = this.#now();
    this.#circuit.failed();
    this.#o.logger.warn("shared dedup tier unavailable; continuing to the database", {
      error: this.#lastError,
      consecutive_failures: this.#failures,
      probe_in_ms: this.#o.sharedProbeIntervalMs,
    });
  }

  async #releaseShared(keys: string[]): Promise<void> {
    if (keys.length === 0 || !this.#o.shared) return;
    // The release matters more than the claim: a claim left behind would make the sender's retry
    // wait for it. Try a few times before giving up.
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await this.#o.shared.release(keys);
        return;
      } catch (error) {
        if (attempt === 3) {
          this.#sharedFailed(error);
          this.#o.logger.error("could not release shared claims after a failed apply", {
            claims: keys.length,
            error: describe(error),
          });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 25 * attempt));
      }
    }
  }
}

/** The copy rule of events with a subject (`isCopyOfHeld` in copy_window.ts). */
const SUBJECT_COPY_RULE = "same key within the copy window, no other action of the subject between";

/** The first 12 hex digits of a key's SHA-256: tells keys apart in logs without showing them. */
function keyHash(key: string): string {
  const digest = sha256(new TextEncoder().encode(key));
  return Array.from(digest.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`.slice(0, 300);
}
