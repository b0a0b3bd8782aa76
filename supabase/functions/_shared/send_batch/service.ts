/**
 * What whatsapp-send-batch does, independent of HTTP: create a batch, start or resume sending
 * (one drain per batch at a time, continued after the time budget without another click), report
 * progress, requeue for retry, and the drain schedule that resumes interrupted batches.
 */
import { serviceAuthHeaders } from "../core/api_keys.ts";
import type { Logger } from "../core/log.ts";
import { waitUntil } from "../core/wait_until.ts";
import type { Caller } from "../core/jwt.ts";
import type { SendBatchConfig } from "./config.ts";
import { BatchDrain, type DrainReport } from "./drain.ts";
import type { BatchMessage } from "./message.ts";
import type { SendProvider } from "./providers/provider.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import type { RecipientList } from "./recipients_input.ts";
import type { BatchProgress, SendBatchRepository, StatusCounts } from "./repository.ts";

/** The answer of the send endpoint. */
export interface SendStart {
  /** Whether this call started a drain (202) or found nothing to start (200). */
  started: boolean;
  batchId: string;
  claimed: number;
  counts: StatusCounts;
}

/** The service role, for continuations and the drain schedule. */
export const SERVICE_CALLER: Caller = { kind: "service", claims: { role: "service_role" } };

/** Creates, sends, reports and retries batches. */
export class SendBatchService {
  readonly #config: SendBatchConfig;
  readonly #repository: SendBatchRepository;
  readonly #drain: BatchDrain;
  readonly #logger: Logger;
  /** Drains started by this instance and still running (tests and shutdown wait for them). */
  readonly running = new Set<Promise<void>>();

  constructor(deps: {
    config: SendBatchConfig;
    repository: SendBatchRepository;
    provider: SendProvider;
    limiter: RateLimiter;
    logger: Logger;
  }) {
    this.#config = deps.config;
    this.#repository = deps.repository;
    this.#logger = deps.logger;
    this.#drain = new BatchDrain({
      repository: deps.repository,
      provider: deps.provider,
      limiter: deps.limiter,
      logger: deps.logger,
      settings: deps.config,
    });
  }

  /** Stores a batch of `owner` and its accepted recipients in one transaction, chunk by chunk. */
  create(
    owner: string,
    message: BatchMessage,
    recipients: RecipientList,
  ): Promise<string> {
    return this.#repository.createBatch(owner, message, recipients.chunks, recipients.accepted);
  }

  /** The batch's drain lease: one budget plus one recipient lease. */
  get #drainLeaseMs(): number {
    return this.#config.timeBudgetMs + this.#config.leaseMs;
  }

  /**
   * Starts or resumes sending: once RLS showed the batch is the caller's, takes the batch's drain
   * lease and claims the first recipients in that transaction, then sends in the background.
   * Undefined when the caller cannot see the batch.
   */
  async startSend(caller: Caller, batchId: string): Promise<SendStart | undefined> {
    const token = crypto.randomUUID();
    const result = await this.#repository.forBatch(caller, batchId, async (tx) => {
      await this.#repository.expireLeases(tx, batchId);
      const counts = await this.#repository.counts(tx, batchId);
      if (counts.pending === 0) return { started: false, batchId, claimed: [], counts };
      if (!(await this.#repository.acquireDrain(tx, batchId, token, this.#drainLeaseMs))) {
        return { started: false, batchId, claimed: [], counts };
      }
      const claimed = await this.#repository.claim(
        tx,
        batchId,
        this.#drain.chunkSize,
        this.#config.leaseMs,
      );
      return { started: true, batchId, claimed, counts };
    });
    if (!result) return undefined;
    if (result.started) this.#track(this.#runDrain(batchId, token, result.claimed));
    return {
      started: result.started,
      batchId,
      claimed: result.claimed.length,
      counts: result.counts,
    };
  }

  #track(work: Promise<void>): void {
    this.running.add(work);
    work.finally(() => this.running.delete(work));
    waitUntil(work);
  }

  async #runDrain(
    batchId: string,
    token: string,
    claimed: Awaited<ReturnType<SendBatchRepository["claim"]>>,
  ): Promise<void> {
    const deadline = Date.now() + this.#config.timeBudgetMs;
    let report: DrainReport | undefined;
    try {
      report = await this.#drain.run(batchId, deadline, claimed);
      this.#logger.info("drain finished", {
        batch: batchId,
        calls: report.calls,
        sent: report.sent,
        failed: report.failed,
        unknown: report.unknown,
        backed_off: report.backedOff,
        more: report.more,
      });
    } finally {
      await this.#repository.releaseDrain(batchId, token).catch(() => {});
    }
    const progressed = report.calls === 0 || report.calls > report.unreachable;
    if (report.more && progressed) await this.#continue(batchId);
  }

  /**
   * Hands the batch to a fresh invocation (its own wall clock) when this function's URL and the
   * service role key are known, else goes on in this instance.
   */
  async #continue(batchId: string): Promise<void> {
    const { selfUrl, serviceRoleKey } = this.#config;
    if (selfUrl && serviceRoleKey) {
      try {
        const response = await fetch(`${selfUrl}/${batchId}/send`, {
          method: "POST",
          headers: { ...serviceAuthHeaders(serviceRoleKey), "x-send-continuation": "1" },
          signal: AbortSignal.timeout(10_000),
        });
        await response.body?.cancel();
        if (response.ok) return;
        this.#logger.warn("continuation refused; the drain schedule will resume", {
          batch: batchId,
          status: response.status,
        });
      } catch (error) {
        this.#logger.warn("continuation failed; the drain schedule will resume", {
          batch: batchId,
          error: String(error),
        });
      }
      return;
    }
    await this.startSend(SERVICE_CALLER, batchId).catch((error) =>
      this.#logger.error("continuation failed", { batch: batchId, error: String(error) })
    );
  }

  /** Resumes every batch that has pending recipients and no live drain; returns their ids. */
  async drainSchedule(): Promise<string[]> {
    const started: string[] = [];
    for (const batchId of await this.#repository.batchesToDrain()) {
      const result = await this.startSend(SERVICE_CALLER, batchId);
      if (result?.started) started.push(batchId);
    }
    return started;
  }

  /**
   * Runs {@link drainSchedule} every `intervalMs` in this instance, for stacks without pg_cron +
   * pg_net calling `POST …/drain` (the local stack).
   */
  runDrainScheduleEvery(intervalMs: number): void {
    const tick = () => {
      this.drainSchedule().catch(() => []).finally(() => {
        setTimeout(tick, intervalMs);
      });
    };
    setTimeout(tick, intervalMs);
  }

  /** The batch's progress, or undefined when the caller cannot see it. */
  progress(caller: Caller, batchId: string): Promise<BatchProgress | undefined> {
    return this.#repository.progress(caller, batchId);
  }

  /** Requeues retryable failed and the listed unknown recipients. */
  retry(caller: Caller, batchId: string, unknownIds: readonly string[]) {
    return this.#repository.retry(caller, batchId, unknownIds);
  }

  /** Resolves when every drain this instance started has ended. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
