/**
 * The database side of send batches, over postgres.js (`SUPABASE_DB_URL`).
 *
 * Whether a batch is the caller's is decided by the same RLS policy the Data API applies: the
 * batch is read in a transaction as that caller (`set local role authenticated` and
 * `request.jwt.claims`, so `auth.uid()` answers as on Supabase and another user's batch is simply
 * not there). The writes that follow run with the function's own role, because the Data API
 * roles may only read send batches; the function is their only writer.
 */
import postgres from "postgres";
import { HttpError } from "../core/http.ts";
import { oneTrip, type OneTripSql } from "../core/db/one_trip.ts";
import { createPostgresPool } from "../core/db/postgres_pool.ts";
import { DatabaseUnavailableError } from "../core/exactly_once.ts";
import type { Caller } from "../core/jwt.ts";
import type { BatchMessage } from "./message.ts";

/** A recipient's status. */
export type RecipientStatus = "pending" | "processing" | "sent" | "failed" | "unknown";

/** A claimed recipient, ready to be sent. */
export interface ClaimedRecipient {
  id: string;
  phone: string;
  name: string | null;
  variables: Record<string, string>;
  /** The attempt this claim is; results are written only for it. */
  attempts: number;
}

/** A batch as its owner sees it. */
export interface OwnedBatch {
  owner: string;
  message: BatchMessage;
}

/** Counts per status, for the progress bar. */
export type StatusCounts = Record<RecipientStatus, number>;

/** The progress of a batch as the GET endpoint shows it. */
export interface BatchProgress {
  batchId: string;
  total: number;
  counts: StatusCounts;
  delivered: number;
  read: number;
  sendRequestedAt: string | null;
  draining: boolean;
  failed: {
    id: string;
    row: number;
    phone: string;
    error_code: string | null;
    reason: string | null;
    retryable: boolean;
  }[];
  unknown: { id: string; row: number; phone: string; reason: string | null; attempts: number }[];
}

const EMPTY_COUNTS: StatusCounts = { pending: 0, processing: 0, sent: 0, failed: 0, unknown: 0 };

/**
 * Every query whatsapp-send-batch runs. Statements outside a transaction (the drain's) are one
 * round trip each with their own statement timeout ({@link oneTrip}); transactions set theirs with
 * their first statement.
 */
export class SendBatchRepository {
  readonly #sql: postgres.Sql;
  readonly #call: OneTripSql;
  readonly #timeoutMs: number;

  constructor(options: { url: string; poolMax: number; timeoutMs: number }) {
    this.#sql = createPostgresPool({ ...options, applicationName: "whatsapp-send-batch" });
    this.#call = oneTrip(this.#sql, options.timeoutMs);
    this.#timeoutMs = Math.ceil(options.timeoutMs);
  }

  /**
   * Runs `work` in one transaction when the caller can see the batch (RLS, as the Data API would
   * answer them); `work` then runs with the function's own role. Undefined when the batch is not
   * the caller's or does not exist.
   */
  async forBatch<T>(
    caller: Caller,
    batchId: string,
    work: (tx: postgres.TransactionSql, batch: OwnedBatch) => Promise<T>,
  ): Promise<T | undefined> {
    try {
      return await this.#sql.begin(async (tx) => {
        const role = caller.kind === "user" ? "authenticated" : "service_role";
        await tx`select set_config('role', ${role}, true),
                        set_config('request.jwt.claims', ${JSON.stringify(caller.claims)}, true),
                        set_config('statement_timeout', ${String(this.#timeoutMs)}, true)`;
        const [batch] = await tx<OwnedBatch[]>`
          select owner, message from public.whatsapp_send_batches where id = ${batchId}`;
        await tx`select set_config('role', 'none', true)`;
        return batch ? await work(tx, batch) : undefined;
      }) as T | undefined;
    } catch (error) {
      throw this.#wrap(error);
    }
  }

  #wrap(error: unknown): unknown {
    if (error instanceof HttpError) return error;
    if (error instanceof postgres.PostgresError) return error;
    return new DatabaseUnavailableError({ cause: error });
  }

  /**
   * Creates a batch owned by `owner` and its `total` recipients in one transaction, one insert per
   * chunk (a JSON array of `{ row, phone, name, variables }`, see `RecipientCollector`); returns
   * the batch id. The caller was checked by the route (a user creates only for themselves).
   */
  async createBatch(
    owner: string,
    message: BatchMessage,
    chunks: readonly string[],
    total: number,
  ): Promise<string> {
    try {
      return await this.#sql.begin(async (tx) => {
        await tx.unsafe(`set local statement_timeout = ${this.#timeoutMs}`);
        const [batch] = await tx<{ id: string }[]>`
          insert into public.whatsapp_send_batches (owner, message, total)
          values (${owner}, ${tx.json(message as unknown as postgres.JSONValue)}, ${total})
          returning id`;
        for (const chunk of chunks) {
          await tx`
            insert into public.whatsapp_send_recipients
              (batch_id, owner, row_number, phone, name, variables)
            select ${batch.id}, ${owner}, x.row, x.phone, x.name, coalesce(x.variables, '{}'::jsonb)
              from jsonb_to_recordset(${chunk}::text::jsonb)
                as x(row integer, phone text, name text, variables jsonb)`;
        }
        return batch.id;
      }) as string;
    } catch (error) {
      throw this.#wrap(error);
    }
  }

  /** Expires lapsed leases (processing → unknown); returns how many. */
  async expireLeases(tx: postgres.Sql | postgres.TransactionSql, batchId: string): Promise<number> {
    const [row] = await tx<{ n: number }[]>`
      select public.whatsapp_send_expire_leases(${batchId}) as n`;
    return row.n;
  }

  /** Counts per status: the batch's counts row, kept by triggers on its recipients. */
  async counts(tx: postgres.Sql | postgres.TransactionSql, batchId: string): Promise<StatusCounts> {
    const [row] = await tx<StatusCounts[]>`
      select pending, processing, sent, failed, unknown
        from public.whatsapp_send_batch_counts where batch_id = ${batchId}`;
    return row ? { ...row } : { ...EMPTY_COUNTS };
  }

  /** Takes the batch's drain lease for `token`; false when another live drain holds it. */
  async acquireDrain(
    tx: postgres.Sql | postgres.TransactionSql,
    batchId: string,
    token: string,
    leaseMs: number,
  ): Promise<boolean> {
    const [row] = await tx<{ ok: boolean }[]>`
      select public.whatsapp_send_acquire_drain(${batchId}, ${token}, ${Math.ceil(leaseMs)}) as ok`;
    return row.ok;
  }

  /** Releases the drain lease if `token` holds it. */
  async releaseDrain(batchId: string, token: string): Promise<void> {
    await this.#run(() =>
      this.#call`select public.whatsapp_send_release_drain(${batchId}, ${token})`
    );
  }

  /** Renews the drain lease; false when it was lost. */
  async renewDrain(batchId: string, token: string, leaseMs: number): Promise<boolean> {
    const [row] = await this.#run(() =>
      this.#call<{ ok: boolean }>`
        select public.whatsapp_send_acquire_drain(${batchId}, ${token}, ${
        Math.ceil(leaseMs)
      }) as ok`
    );
    return row.ok;
  }

  /** The atomic claim: up to `limit` pending recipients become processing with a lease. */
  claim(
    tx: postgres.Sql | postgres.TransactionSql,
    batchId: string,
    limit: number,
    leaseMs: number,
  ): Promise<ClaimedRecipient[]> {
    return tx<ClaimedRecipient[]>`
      select id, phone, name, variables, attempts
        from public.whatsapp_send_claim(${batchId}, ${limit}, ${Math.ceil(leaseMs)})`;
  }

  /** {@link claim} outside a caller's transaction (the drain). */
  claimForDrain(batchId: string, limit: number, leaseMs: number): Promise<ClaimedRecipient[]> {
    return this.#run(() =>
      this.#call<ClaimedRecipient>`
        select id, phone, name, variables, attempts
          from public.whatsapp_send_claim(${batchId}, ${limit}, ${Math.ceil(leaseMs)})`
    );
  }

  /** The batch's message (the drain). */
  async messageOf(batchId: string): Promise<BatchMessage | undefined> {
    const rows = await this.#run(() =>
      this.#call<{ message: BatchMessage }>`
        select message from public.whatsapp_send_batches where id = ${batchId}`
    );
    return rows[0]?.message;
  }

  /**
   * Milliseconds until the next backing-off recipient may be claimed; undefined when none. The
   * counts row says whether any is pending, one index probe which is due first.
   */
  async nextPendingInMs(batchId: string): Promise<number | undefined> {
    const [row] = await this.#run(() =>
      this.#call<{ pending: number; wait_ms: number | null }>`
        select c.pending,
               (select greatest(0, extract(epoch from (r.not_before - now())) * 1000)::int
                  from public.whatsapp_send_recipients r
                 where r.batch_id = c.batch_id and r.status = 'pending'
                 order by r.not_before nulls first
                 limit 1) as wait_ms
          from public.whatsapp_send_batch_counts c
         where c.batch_id = ${batchId}`
    );
    if (!row || row.pending === 0) return undefined;
    return row.wait_ms ?? 0;
  }

  /** Records acceptance by the provider. */
  async recordSent(recipient: ClaimedRecipient, messageId: string): Promise<void> {
    await this.#run(() =>
      this.#call`
        update public.whatsapp_send_recipients
           set status = 'sent', provider_message_id = ${messageId}, sent_at = coalesce(sent_at, now()),
               lease_until = null, error_code = null, error_message = null, updated_at = now()
         where id = ${recipient.id} and attempts = ${recipient.attempts}
           and status in ('processing', 'unknown')`
    );
  }

  /** Records a rejection with the provider's code. */
  async recordFailed(
    recipient: ClaimedRecipient,
    code: string,
    message: string,
    retryable: boolean,
  ): Promise<void> {
    await this.#run(() =>
      this.#call`
        update public.whatsapp_send_recipients
           set status = 'failed', error_code = ${code}, error_message = ${message.slice(0, 500)},
               retryable = ${retryable}, lease_until = null, updated_at = now()
         where id = ${recipient.id} and attempts = ${recipient.attempts}
           and status in ('processing', 'unknown')`
    );
  }

  /** Records an ambiguous outcome: it may have been sent; never resent automatically. */
  async recordUnknown(recipient: ClaimedRecipient, reason: string): Promise<void> {
    await this.#run(() =>
      this.#call`
        update public.whatsapp_send_recipients
           set status = 'unknown', error_code = 'ambiguous', error_message = ${reason},
               lease_until = null, updated_at = now()
         where id = ${recipient.id} and attempts = ${recipient.attempts} and status = 'processing'`
    );
  }

  /** Puts a recipient back to pending after nothing was sent (throttled, provider down). */
  async recordBackoff(
    recipient: ClaimedRecipient,
    code: string | null,
    waitMs: number,
  ): Promise<void> {
    await this.#run(() =>
      this.#call`
        update public.whatsapp_send_recipients
           set status = 'pending', error_code = coalesce(${code}, error_code), lease_until = null,
               not_before = now() + make_interval(secs => ${waitMs / 1000}), updated_at = now()
         where id = ${recipient.id} and attempts = ${recipient.attempts} and status = 'processing'`
    );
  }

  /** The progress of a batch the caller can see, or undefined. */
  progress(caller: Caller, batchId: string): Promise<BatchProgress | undefined> {
    return this.forBatch(caller, batchId, async (tx) => {
      await this.expireLeases(tx, batchId);
      // Counts from the batch's counts row; the lists of failed and unknown recipients are the
      // first 1,000 by row, each read through the (batch_id, status, row_number) index.
      const [batch] = await tx<
        (StatusCounts & {
          total: number;
          send_requested_at: Date | null;
          draining: boolean;
          delivered: number;
          read: number;
        })[]
      >`
        select b.total, b.send_requested_at,
               coalesce(b.drain_lease_until > now(), false) as draining,
               coalesce(c.pending, 0) as pending, coalesce(c.processing, 0) as processing,
               coalesce(c.sent, 0) as sent, coalesce(c.failed, 0) as failed,
               coalesce(c.unknown, 0) as unknown, coalesce(c.delivered, 0) as delivered,
               coalesce(c.read, 0) as read
          from public.whatsapp_send_batches b
          left join public.whatsapp_send_batch_counts c on c.batch_id = b.id
         where b.id = ${batchId}`;
      const counts: StatusCounts = {
        pending: batch.pending,
        processing: batch.processing,
        sent: batch.sent,
        failed: batch.failed,
        unknown: batch.unknown,
      };
      const delivery = { delivered: batch.delivered, read: batch.read };
      const listed = await tx<{
        id: string;
        row_number: number;
        phone: string;
        status: RecipientStatus;
        error_code: string | null;
        error_message: string | null;
        retryable: boolean | null;
        attempts: number;
      }[]>`
        (select id, row_number, phone, status, error_code, error_message, retryable, attempts
           from public.whatsapp_send_recipients
          where batch_id = ${batchId} and status = 'failed'
          order by row_number limit 1000)
        union all
        (select id, row_number, phone, status, error_code, error_message, retryable, attempts
           from public.whatsapp_send_recipients
          where batch_id = ${batchId} and status = 'unknown'
          order by row_number limit 1000)`;
      const problems = [...listed].sort((a, b) => a.row_number - b.row_number).slice(0, 1000);
      return {
        batchId,
        total: batch.total,
        counts,
        delivered: delivery.delivered,
        read: delivery.read,
        sendRequestedAt: batch.send_requested_at?.toISOString() ?? null,
        draining: batch.draining,
        failed: problems.filter((p) => p.status === "failed").map((p) => ({
          id: p.id,
          row: p.row_number,
          phone: p.phone,
          error_code: p.error_code,
          reason: p.error_message,
          retryable: p.retryable === true,
        })),
        unknown: problems.filter((p) => p.status === "unknown").map((p) => ({
          id: p.id,
          row: p.row_number,
          phone: p.phone,
          reason: p.error_message,
          attempts: p.attempts,
        })),
      };
    });
  }

  /**
   * Puts retryable failed recipients and the listed unknown ones back to pending; returns the
   * numbers requeued, or undefined when the caller cannot see the batch.
   */
  retry(
    caller: Caller,
    batchId: string,
    unknownIds: readonly string[],
  ): Promise<{ failed: number; unknown: number } | undefined> {
    return this.forBatch(caller, batchId, async (tx) => {
      await this.expireLeases(tx, batchId);
      // One statement: the batch's counts row is written once, after every row it requeues.
      const [row] = await tx<{ failed: number; unknown: number }[]>`
        with requeued as (
          update public.whatsapp_send_recipients r
             set status = 'pending', not_before = null, lease_until = null, updated_at = now()
            from (
              select id, status from public.whatsapp_send_recipients
               where batch_id = ${batchId} and status = 'failed' and retryable
              union all
              select id, status from public.whatsapp_send_recipients
               where batch_id = ${batchId} and status = 'unknown'
                 and id = any(${[...unknownIds]}::uuid[])
            ) p
           where r.id = p.id and r.status = p.status
          returning p.status
        )
        select count(*) filter (where status = 'failed')::int as failed,
               count(*) filter (where status = 'unknown')::int as unknown
          from requeued`;
      return { failed: row.failed, unknown: row.unknown };
    });
  }

  /** Batches with pending work and no live drain (for the drain schedule). */
  async batchesToDrain(limit = 100): Promise<string[]> {
    const rows = await this.#run(() =>
      this.#call<{ batch_id: string }>`
        select batch_id from public.whatsapp_send_batches_to_drain(${limit})`
    );
    return rows.map((r) => r.batch_id);
  }

  /**
   * Takes up to `want` call slots `intervalMs` apart from the rate timeline of `key` (the rate
   * limit's fallback while Upstash is down), unless it is booked more than `horizonMs` ahead.
   */
  async takeRateSlots(
    key: string,
    intervalMs: number,
    want: number,
    horizonMs: number,
  ): Promise<{ granted: number; firstInMs: number; retryInMs: number }> {
    const [row] = await this.#run(() =>
      this.#call<{ granted: number; first_in_ms: number; retry_in_ms: number }>`
        select granted, first_in_ms, retry_in_ms
          from public.whatsapp_send_rate_take(${key}::text, ${intervalMs}::float8,
                                              ${want}::integer, ${horizonMs}::float8)`
    );
    return { granted: row.granted, firstInMs: row.first_in_ms, retryInMs: row.retry_in_ms };
  }

  async #run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw this.#wrap(error);
    }
  }

  /** Closes the pool. */
  async close(): Promise<void> {
    await this.#sql.end({ timeout: 1 });
  }
}
