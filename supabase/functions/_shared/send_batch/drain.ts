/**
 * The sending loop of one batch for a bounded time: claim a few pending recipients at a time
 * (atomically, with a lease), call the provider at the allowed rate, write each outcome at once.
 *
 * A recipient is called at most once per claim, and a claim is only ever made on a `pending` row,
 * so two drains (two clicks, two instances, a continuation and the schedule) never send one
 * recipient twice. Anything that may have gone out is recorded `unknown`, never put back.
 */
import type { Logger } from "../core/log.ts";
import { renderMessage } from "./message.ts";
import type { SendProvider } from "./providers/provider.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import type { ClaimedRecipient, SendBatchRepository } from "./repository.ts";

/** Settings of a drain. */
export interface DrainSettings {
  concurrency: number;
  claimChunk: number;
  ratePerSecond: number;
  leaseMs: number;
  providerTimeoutMs: number;
  backoffMs: number;
}

/** What one drain did. */
export interface DrainReport {
  calls: number;
  sent: number;
  failed: number;
  unknown: number;
  backedOff: number;
  /** Calls that found the provider unreachable (nothing sent). */
  unreachable: number;
  /** Pending recipients remain (the time budget ended, or all left are backing off). */
  more: boolean;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Recipients claimed per statement: no more than can be in flight at once (and about one second
 * of sending), so a claimed recipient is called promptly and a crash leaves few `unknown` rows
 * that were never called.
 */
export function claimChunkSize(
  settings: Pick<DrainSettings, "claimChunk" | "concurrency" | "ratePerSecond">,
): number {
  const { claimChunk, concurrency, ratePerSecond } = settings;
  return Math.max(1, Math.min(claimChunk, concurrency, Math.ceil(ratePerSecond)));
}

/** Sends one batch's pending recipients until none are left or the deadline passes. */
export class BatchDrain {
  readonly #repository: SendBatchRepository;
  readonly #provider: SendProvider;
  readonly #limiter: RateLimiter;
  readonly #settings: DrainSettings;
  readonly #logger: Logger;

  constructor(deps: {
    repository: SendBatchRepository;
    provider: SendProvider;
    limiter: RateLimiter;
    settings: DrainSettings;
    logger: Logger;
  }) {
    this.#repository = deps.repository;
    this.#provider = deps.provider;
    this.#limiter = deps.limiter;
    this.#settings = deps.settings;
    this.#logger = deps.logger;
  }

  /** Recipients claimed per statement ({@link claimChunkSize}). */
  get chunkSize(): number {
    return claimChunkSize(this.#settings);
  }

  /**
   * Drains `batchId` until `deadline` (epoch ms), starting with recipients already claimed.
   * Never throws: database or provider trouble ends the drain and leaves rows to their leases.
   */
  async run(
    batchId: string,
    deadline: number,
    claimed: ClaimedRecipient[] = [],
  ): Promise<DrainReport> {
    const report: DrainReport = {
      calls: 0,
      sent: 0,
      failed: 0,
      unknown: 0,
      backedOff: 0,
      unreachable: 0,
      more: false,
    };
    const message = await this.#repository.messageOf(batchId).catch(() => undefined);
    if (!message) {
      for (const r of claimed) await this.#repository.recordBackoff(r, null, 0).catch(() => {});
      report.more = claimed.length > 0;
      return report;
    }
    if (claimed.length > 0) this.#limiter.expect(claimed.length);
    const queue: { recipient: ClaimedRecipient; claimedAt: number }[] = claimed.map((
      recipient,
    ) => ({
      recipient,
      claimedAt: Date.now(),
    }));
    let refill: Promise<void> | undefined;
    let exhausted = false;
    let stopped = false;
    /** Claimed recipients not yet settled (queued or being called). */
    let unsettled = queue.length;

    const fill = async () => {
      while (!stopped && Date.now() < deadline) {
        const rows = await this.#repository.claimForDrain(
          batchId,
          this.chunkSize,
          this.#settings.leaseMs,
        );
        if (rows.length > 0) {
          this.#limiter.expect(rows.length);
          const now = Date.now();
          unsettled += rows.length;
          for (const recipient of rows) queue.push({ recipient, claimedAt: now });
          return;
        }
        // Read before the query (only this loop adds to it): a call that settles while the query
        // runs may put its recipient back (throttled) after the database answered "nothing pending".
        const busy = unsettled > 0;
        const waitMs = await this.#repository.nextPendingInMs(batchId);
        if (waitMs === undefined && busy) {
          // A call not yet settled may still put its recipient back: ask again.
          await sleep(20);
          continue;
        }
        if (waitMs === undefined) {
          exhausted = true;
          return;
        }
        if (Date.now() + waitMs >= deadline) {
          report.more = true;
          stopped = true;
          return;
        }
        await sleep(Math.min(Math.max(waitMs, 20), 1000));
      }
    };

    const next = async () => {
      for (;;) {
        const item = queue.shift();
        if (item) return item;
        if (exhausted || stopped || Date.now() >= deadline) return undefined;
        refill ??= fill().finally(() => (refill = undefined));
        await refill;
      }
    };

    const worker = async () => {
      for (;;) {
        const item = await next();
        if (!item) return;
        try {
          try {
            await this.#limiter.acquire();
          } catch (error) {
            // No slot (the rate's store is down): nothing was sent; back to pending, drain ends.
            await this.#repository.recordBackoff(item.recipient, null, 0).catch(() => {});
            throw error;
          }
          // Out of time, or queued so long that the lease could lapse during the call: give it back.
          const late = Date.now() - item.claimedAt >
            (this.#settings.leaseMs - this.#settings.providerTimeoutMs) / 2;
          if (Date.now() >= deadline || late) {
            await this.#repository.recordBackoff(item.recipient, null, 0);
            report.more = true;
            continue;
          }
          await this.#sendOne(item.recipient, message, report);
        } finally {
          unsettled--;
        }
      }
    };

    try {
      await Promise.all(Array.from({ length: this.#settings.concurrency }, () => worker()));
    } catch (error) {
      stopped = true;
      this.#logger.error("drain stopped", { batch: batchId, error: String(error) });
      report.more = true;
    }
    // Claimed but never called (an error stopped the workers): back to pending, nothing was sent.
    for (const item of queue.splice(0)) {
      await this.#repository.recordBackoff(item.recipient, null, 0).catch(() => {});
      report.more = true;
    }
    if (!exhausted && Date.now() >= deadline) report.more = true;
    return report;
  }

  async #sendOne(
    recipient: ClaimedRecipient,
    message: Parameters<typeof renderMessage>[0],
    report: DrainReport,
  ): Promise<void> {
    report.calls++;
    const outcome = await this.#provider.send({
      recipientId: recipient.id,
      phone: recipient.phone,
      message: renderMessage(message, {
        phone: recipient.phone,
        name: recipient.name,
        variables: recipient.variables ?? {},
      }),
    });
    switch (outcome.kind) {
      case "sent":
        report.sent++;
        return await this.#repository.recordSent(recipient, outcome.messageId);
      case "rejected":
        report.failed++;
        return await this.#repository.recordFailed(
          recipient,
          outcome.code,
          outcome.message,
          outcome.retryable,
        );
      case "unknown":
        report.unknown++;
        return await this.#repository.recordUnknown(recipient, outcome.reason);
      case "throttled": {
        report.backedOff++;
        const waitMs = outcome.retryAfterMs ?? this.#settings.backoffMs;
        this.#limiter.pause(waitMs);
        return await this.#repository.recordBackoff(recipient, outcome.code, waitMs);
      }
      case "unreachable":
        report.backedOff++;
        report.unreachable++;
        this.#limiter.pause(this.#settings.backoffMs);
        return await this.#repository.recordBackoff(
          recipient,
          "unreachable",
          this.#settings.backoffMs,
        );
    }
  }
}
