/**
 * The narrow interface every dedup cache tier implements.
 *
 * A claim says "this delivery is being handled". Claims are accelerators only: a store that fails
 * must throw {@link ClaimStoreUnavailableError}, never answer "held".
 */

/** One key to claim, with the delivery's event time. */
export interface ClaimRequest {
  /** The composite dedup key. */
  key: string;
  /** Event time of the delivery, in epoch milliseconds. */
  at: number;
  /**
   * Whose events these are (e.g. one person in one group), when events of different actions of
   * one subject can alternate. A delivery is then a copy only when no distinct event of another
   * action of the subject lies between it and the event it copies.
   */
  subject?: string;
  /** The action of the event, for {@link subject}'s rule (e.g. `join`). */
  action?: string;
}

/**
 * - `claimed`: the caller now owns the key and applies the event;
 * - `held`: a copy of an event the database already has: answer "duplicate";
 * - `in-flight`: the key is held but that says nothing for sure: another delivery claimed it and
 *   did not confirm in time (still working, or its instance died), or it was confirmed for an
 *   event that this one is not a copy of (a real rejoin in the same bucket). The caller lets the
 *   database decide, which applies each change exactly once.
 */
export type ClaimResult = "claimed" | "held" | "in-flight";

/** A dedup cache tier. */
export interface ClaimStore {
  /** Short name used in logs and the health response. */
  readonly name: string;
  /** Claims each key atomically (set-if-absent with expiry); one result per request, in order. */
  claim(requests: readonly ClaimRequest[]): Promise<ClaimResult[]>;
  /**
   * Records that the database has these events (applied, or already there), so that later copies
   * are answered without the database. `at` is the time of the distinct event the database matched
   * each one to. Only keys this store answered `claimed` or `in-flight` for. Runs after the
   * response (`waitUntil`); a lost confirmation is harmless.
   */
  confirm(claims: readonly ClaimRequest[]): Promise<void>;
  /** Deletes claims, so that a retry of failed work is processed. */
  release(keys: readonly string[]): Promise<void>;
  /** Waits for confirmations still being sent and stops timers. */
  close(): Promise<void>;
}

/** Raised by a store that could not answer (error, timeout, outage). Never means "duplicate". */
export class ClaimStoreUnavailableError extends Error {
  constructor(store: string, options?: ErrorOptions) {
    super(`claim store "${store}" is unavailable`, options);
    this.name = "ClaimStoreUnavailableError";
  }
}
