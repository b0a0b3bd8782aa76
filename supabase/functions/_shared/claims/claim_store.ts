/**
 * The narrow interface every dedup cache tier implements.
 *
 * A claim says "this instance is handling this event". Claims are accelerators only: a store
 * that fails must throw {@link ClaimStoreUnavailableError}, never answer "held".
 */

/** One key to claim, and the opposing key that a successful claim frees. */
export interface ClaimRequest {
  /** The composite dedup key. */
  key: string;
  /** Event time of the delivery, in epoch milliseconds. */
  at: number;
  /** Keys to delete along with the claim (the other actions in the same bucket). */
  frees?: readonly string[];
}

/** `claimed`: the caller now owns the key. `held`: another delivery already claimed it. */
export type ClaimResult = "claimed" | "held";

/** A dedup cache tier. */
export interface ClaimStore {
  /** Short name used in logs and the health response. */
  readonly name: string;
  /** Claims each key atomically (set-if-absent with expiry); one result per request, in order. */
  claim(requests: readonly ClaimRequest[]): Promise<ClaimResult[]>;
  /** Deletes claims, so that a retry of failed work is processed. */
  release(keys: readonly string[]): Promise<void>;
}

/** Raised by a store that could not answer (error, timeout, outage). Never means "duplicate". */
export class ClaimStoreUnavailableError extends Error {
  constructor(store: string, options?: ErrorOptions) {
    super(`claim store "${store}" is unavailable`, options);
    this.name = "ClaimStoreUnavailableError";
  }
}
