/**
 * The topology rows' sender: each event's two session copies reach two different instances,
 * either one after the other (the first copy alone, then a late copy once the first was
 * answered) or together (racing copies). It times each kind apart; every delivery is retried on
 * another instance until it gets a 2xx, within bounds.
 */
import type { Target } from "../lib/sender.ts";
import type { Delivery } from "../lib/workload.ts";

/** Options of {@link sendCopies}. */
export interface CopySendOptions {
  /** Events in flight at once (1: one event at a time). */
  concurrency: number;
  /** `X-Webhook-Signature` value per body. */
  signatures: Map<string, string>;
  /** Seeded random source: instance choice and each event's pattern. */
  random: () => number;
  /** Upper bound of the whole run. */
  deadlineMs: number;
}

/** What the sender saw, with the latencies of each kind of copy. */
export interface CopySendResult {
  deliveries: number;
  attempts: number;
  non2xx: number;
  gaveUp: number;
  /** Every answered attempt, ms. */
  latenciesMs: number[];
  /** The first copy of an event, sent alone, answered at its first attempt. */
  firstMs: number[];
  /** The second copy, sent to another instance after the first was answered. */
  lateMs: number[];
  /** Of two copies sent together to two instances, the one answered last. */
  racingMs: number[];
  elapsedMs: number;
}

const ATTEMPTS = 40;
const ATTEMPT_TIMEOUT_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends the phases in order (a phase's events `concurrency` at a time); events alternate between
 * the sequential and the racing pattern. Needs at least two copies per event and two instances.
 */
export async function sendCopies(
  phases: readonly Delivery[][],
  targets: readonly Target[],
  options: CopySendOptions,
): Promise<CopySendResult> {
  const result: CopySendResult = {
    deliveries: 0,
    attempts: 0,
    non2xx: 0,
    gaveUp: 0,
    latenciesMs: [],
    firstMs: [],
    lateMs: [],
    racingMs: [],
    elapsedMs: 0,
  };
  const started = performance.now();
  const deadline = started + options.deadlineMs;
  const pick = (avoid: Set<Target>): Target => {
    const live = targets.filter((t) => t.alive && !avoid.has(t));
    const from = live.length > 0 ? live : targets.filter((t) => t.alive);
    return from[Math.floor(options.random() * from.length)];
  };

  /** Delivers one body to `first`, then retries elsewhere; the first attempt's latency or NaN. */
  const deliver = async (delivery: Delivery, first: Target, avoid: Set<Target>) => {
    result.deliveries++;
    let target = first;
    for (let attempt = 1; attempt <= ATTEMPTS && performance.now() < deadline; attempt++) {
      result.attempts++;
      const t0 = performance.now();
      try {
        const response = await fetch(target.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-webhook-signature": options.signatures.get(delivery.body)!,
          },
          body: delivery.body,
          signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
        });
        await response.arrayBuffer();
        const ms = performance.now() - t0;
        result.latenciesMs.push(ms);
        if (response.ok) return attempt === 1 ? ms : NaN;
        result.non2xx++;
      } catch {
        result.non2xx++;
      }
      await sleep(Math.min(50 * attempt, 500));
      target = pick(new Set([...avoid, target]));
    }
    result.gaveUp++;
    return NaN;
  };

  let unitIndex = 0;
  const runUnit = async (unit: Delivery[]) => {
    const racing = unitIndex++ % 2 === 1;
    const a = pick(new Set());
    const b = pick(new Set([a]));
    const rest = unit.slice(2);
    if (unit.length < 2) {
      const x = await deliver(unit[0], a, new Set());
      if (Number.isFinite(x)) result.firstMs.push(x);
    } else if (racing) {
      const [x, y] = await Promise.all([
        deliver(unit[0], a, new Set([b])),
        deliver(unit[1], b, new Set([a])),
      ]);
      if (Number.isFinite(x) && Number.isFinite(y)) result.racingMs.push(Math.max(x, y));
    } else {
      const x = await deliver(unit[0], a, new Set());
      if (Number.isFinite(x)) result.firstMs.push(x);
      const y = await deliver(unit[1], b, new Set([a]));
      if (Number.isFinite(y)) result.lateMs.push(y);
    }
    for (const extra of rest) await deliver(extra, pick(new Set([a, b])), new Set());
  };

  for (const phase of phases) {
    // Units: the consecutive copies of one event.
    const units: Delivery[][] = [];
    for (const delivery of phase) {
      const unit = units.at(-1);
      if (unit && unit[0].event === delivery.event) unit.push(delivery);
      else units.push([delivery]);
    }
    let next = 0;
    const worker = async () => {
      while (next < units.length) await runUnit(units[next++]);
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  }
  result.elapsedMs = performance.now() - started;
  return result;
}
