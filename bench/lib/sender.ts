/**
 * The sender: delivers the workload's phases to function instances, copies of one event
 * concurrently, each copy to a randomly chosen live instance, and retries every delivery that
 * got no 2xx (to another live instance), as a webhook gateway does. Every loop is bounded in
 * attempts and in time.
 */
import type { Delivery } from "./workload.ts";

/** A function instance the sender may deliver to. */
export interface Target {
  url: string;
  /** Cleared by the fault injector when the instance is killed; the sender then avoids it. */
  alive: boolean;
}

/** Options of {@link sendPhases}. */
export interface SendOptions {
  /** Events in flight at once (each with all its copies). */
  concurrency: number;
  /** `X-Webhook-Signature` value per body. */
  signatures: Map<string, string>;
  /** Attempts per delivery before giving up. */
  maxAttempts: number;
  /** Upper bound of the whole run; what is left after it is given up. */
  deadlineMs: number;
  /** Bound on one HTTP attempt. */
  attemptTimeoutMs: number;
  /** Called after each delivery completes (2xx or given up). */
  onProgress?: (done: number, total: number) => void;
  /** Seeded random source for instance choice. */
  random: () => number;
  /**
   * Non-2xx answers that end the delivery without a retry (counted in `rejected`), as a gateway
   * takes a 4xx as final; default: none (every non-2xx is retried).
   */
  isFinal?: (status: number) => boolean;
}

/** What the sender saw. */
export interface SendResult {
  deliveries: number;
  /** HTTP attempts, retries included. */
  attempts: number;
  /** Attempts answered with a non-2xx status or not answered at all. */
  non2xx: number;
  /** Of {@link non2xx}: attempts with no HTTP answer (connection refused or reset, timeout). */
  networkErrors: number;
  /** Deliveries that never got a 2xx within the attempt and time bounds. */
  gaveUp: number;
  /** Deliveries ended by a final non-2xx answer ({@link SendOptions.isFinal}). */
  rejected: number;
  /** Latency of every attempt that got an HTTP answer, in ms. */
  latenciesMs: number[];
  elapsedMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A result with nothing sent yet, for `deliveries` deliveries. */
export function emptySendResult(deliveries: number): SendResult {
  return {
    deliveries,
    attempts: 0,
    non2xx: 0,
    networkErrors: 0,
    gaveUp: 0,
    rejected: 0,
    latenciesMs: [],
    elapsedMs: 0,
  };
}

/** Sends every phase in order; within a phase, events go out `concurrency` at a time. */
export async function sendPhases(
  phases: readonly Delivery[][],
  targets: readonly Target[],
  options: SendOptions,
): Promise<SendResult> {
  const total = phases.reduce((n, p) => n + p.length, 0);
  const result = emptySendResult(total);
  const started = performance.now();
  const deadline = started + options.deadlineMs;
  let done = 0;

  const pick = (avoid?: Target): Target | undefined => {
    let live = targets.filter((t) => t.alive);
    if (avoid && live.length > 1) live = live.filter((t) => t !== avoid);
    return live.length === 0 ? undefined : live[Math.floor(options.random() * live.length)];
  };

  const deliver = async (delivery: Delivery) => {
    let last: Target | undefined;
    for (let attempt = 1; attempt <= options.maxAttempts; attempt++) {
      if (performance.now() > deadline) break;
      const target = pick(last);
      if (!target) {
        await sleep(100);
        continue;
      }
      last = target;
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
          signal: AbortSignal.timeout(options.attemptTimeoutMs),
        });
        await response.arrayBuffer();
        result.latenciesMs.push(performance.now() - t0);
        if (response.ok) {
          done++;
          options.onProgress?.(done, total);
          return;
        }
        result.non2xx++;
        if (options.isFinal?.(response.status)) {
          result.rejected++;
          done++;
          options.onProgress?.(done, total);
          return;
        }
      } catch {
        result.non2xx++;
        result.networkErrors++;
      }
      await sleep(Math.min(50 * attempt, 500));
    }
    result.gaveUp++;
    done++;
    options.onProgress?.(done, total);
  };

  for (const phase of phases) {
    // Units: the consecutive copies of one event, sent together.
    const units: Delivery[][] = [];
    for (const delivery of phase) {
      const unit = units.at(-1);
      if (unit && unit[0].event === delivery.event && delivery.kind === "copy") unit.push(delivery);
      else units.push([delivery]);
    }
    let next = 0;
    const worker = async () => {
      while (next < units.length) {
        const unit = units[next++];
        await Promise.all(unit.map(deliver));
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  }
  result.elapsedMs = performance.now() - started;
  return result;
}

/** The p-th percentile (0–100) of values, nearest-rank; 0 when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}
