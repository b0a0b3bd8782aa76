/**
 * A half-open circuit in front of an optional tier (Upstash Redis). Closed, every request uses the
 * tier. A failure opens it: requests skip the tier, and the first one once the probe interval has
 * passed tries it again (half-open; one such probe per interval). A success closes it at once, so
 * the tier is back for the very next request; a failure opens it for another interval.
 */

/** Whether requests may use a tier that failed, and when it is tried again. */
export class HalfOpenCircuit {
  readonly #probeIntervalMs: number;
  readonly #now: () => number;
  #open = false;
  #nextProbeAt = 0;

  /** `probeIntervalMs` after a failure, one request tries the tier again (0: every request). */
  constructor(probeIntervalMs: number, now: () => number = Date.now) {
    this.#probeIntervalMs = probeIntervalMs;
    this.#now = now;
  }

  /** Whether this request may use the tier: always when closed, one probe per interval when open. */
  allow(): boolean {
    if (!this.#open) return true;
    const now = this.#now();
    if (now < this.#nextProbeAt) return false;
    // This request is the probe; the next one waits another interval unless it answers first.
    this.#nextProbeAt = now + this.#probeIntervalMs;
    return true;
  }

  /** The tier answered: closed. */
  succeeded(): void {
    this.#open = false;
  }

  /** The tier failed: open until the next probe. */
  failed(): void {
    this.#open = true;
    this.#nextProbeAt = this.#now() + this.#probeIntervalMs;
  }

  /** Whether the last answer was a failure. */
  get open(): boolean {
    return this.#open;
  }

  /** While open, when the next probe may go (epoch ms); undefined when closed. */
  get nextProbeAt(): number | undefined {
    return this.#open ? this.#nextProbeAt : undefined;
  }
}
