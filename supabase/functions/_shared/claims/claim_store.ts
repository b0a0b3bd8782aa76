/**
 * The narrow interface every dedup cache tier implements.
 *
 * A claim says "this delivery is being handled". Claims are accelerators only: a store that fails
 * must throw {@link ClaimStoreUnavailableError}, never answer "held".
 */

/** One key to claim, and the keys that a claim frees. */
export interface ClaimRequest {
  /** The composite dedup key. */
  key: string;
  /** Event time of the delivery, in epoch milliseconds. */
  at: number;
  /** Keys to delete along with the claim (the other actions in the same bucket). */
  frees?: readonly string[];
}

/**
 * - `claimed`: the caller now owns the key and applies the event;
 * - `held`: the event is already in the database (a copy): answer "duplicate";
 * - `in-flight`: another delivery claimed it and has not confirmed yet. It may still be working,
 *   or its instance may have died: the caller lets the database decide, which is exactly-once.
 */
export type ClaimResult = "claimed" | "held" | "in-flight";

/** A dedup cache tier. */
export interface ClaimStore {
  /** Short name used in logs and the health response. */
  readonly name: string;
  /** Claims each key atomically (set-if-absent with expiry); one result per request, in order. */
  claim(requests: readonly ClaimRequest[]): Promise<ClaimResult[]>;
  /** Marks this caller's claims as applied, so that later copies are answered without the database. */
  confirm(keys: readonly string[]): void;
  /** Deletes claims, so that a retry of failed work is processed. */
  release(keys: readonly string[]): Promise<void>;
  /** Sends whatever is still queued (confirmations) and stops timers. */
  close(): Promise<void>;
}

/** Raised by a store that could not answer (error, timeout, outage). Never means "duplicate". */
export class ClaimStoreUnavailableError extends Error {
  constructor(store: string, options?: ErrorOptions) {
    super(`claim store "${store}" is unavailable`, options);
    this.name = "ClaimStoreUnavailableError";
  }
}
