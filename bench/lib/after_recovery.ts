/**
 * Database round trips per delivery in the seconds after a fault heals (Redis back, or answering
 * in time again): how soon the Redis tier takes its share of the deliveries again.
 */

/** The figure a fault row reports. */
export interface AfterRecoveryFigure {
  /** Length of the window measured (ms): up to `windowMs`, less when the run ended first. */
  windowMs: number;
  /** Deliveries completed in the window. */
  deliveries: number;
  dbRoundTripsPerDelivery: number;
}

/** Snapshots of the round-trip counter and the deliveries done, from recovery on. */
export class AfterRecoveryWindow {
  readonly #roundTrips: () => number;
  readonly #windowMs: number;
  #start?: { at: number; done: number; roundTrips: number };
  #last?: { at: number; done: number; roundTrips: number };

  /** `roundTrips` reads the database proxy's counter; the window lasts `windowMs` (10 s). */
  constructor(roundTrips: () => number, windowMs = 10_000) {
    this.#roundTrips = roundTrips;
    this.#windowMs = windowMs;
  }

  /** The fault has healed, with `done` deliveries completed so far. */
  start(done: number): void {
    this.#start = { at: performance.now(), done, roundTrips: this.#roundTrips() };
  }

  /** A delivery completed (`done` so far); counted while inside the window. */
  progress(done: number): void {
    if (!this.#start) return;
    const at = performance.now();
    if (at - this.#start.at <= this.#windowMs) {
      this.#last = { at, done, roundTrips: this.#roundTrips() };
    }
  }

  /** The figure, or undefined when no delivery completed after recovery. */
  figure(): AfterRecoveryFigure | undefined {
    const start = this.#start;
    const last = this.#last;
    if (!start || !last || last.done <= start.done) return undefined;
    const deliveries = last.done - start.done;
    return {
      windowMs: Math.round(last.at - start.at),
      deliveries,
      dbRoundTripsPerDelivery: (last.roundTrips - start.roundTrips) / deliveries,
    };
  }
}

/** Whether a fault takes Redis away (the rows that report {@link AfterRecoveryFigure}). */
export function isRedisFault(fault: string | undefined): boolean {
  return fault === "redis-killed" || fault === "redis-slow";
}

/** The log line of a figure. */
export function describeAfterRecovery(figure: AfterRecoveryFigure | undefined): string {
  if (!figure) return "  after Redis returns: no delivery completed";
  return `  after Redis returns: ${figure.dbRoundTripsPerDelivery.toFixed(2)} DB round trips/` +
    `delivery over ${figure.deliveries} deliveries in ${(figure.windowMs / 1000).toFixed(1)} s`;
}
