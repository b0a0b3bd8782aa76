/**
 * The chaos run's whatsapp-send-batch side: a user who creates batches and clicks send while the
 * nemesis works (every POST with an Idempotency-Key, retried like a client: after a connection
 * error, a 5xx, or a 409/429 with Retry-After; any other answer is final), the final drain once
 * every fault has healed, and the checker: lost, doubled and stuck recipients and keys.
 */
import type postgres from "postgres";
import type { RowChange } from "../../tests/support/realtime_changes.ts";
import { mintJwt } from "../../tests/support/jwt.ts";
import type { FakeWhatsAppProvider } from "../../tests/support/fake_whatsapp_provider.ts";
import { sleep } from "../lib/context.ts";
import { phones } from "../send_batch_bench.ts";

/** Where the user's requests go: the send-batch URL of a live instance, picked at random. */
export type PickUrl = () => string | undefined;

/** What the user asked for. */
export interface SendPlan {
  owner: string;
  /** Batches the user got an id for, with their recipients' phones. */
  batches: { id: string; phones: string[] }[];
  /** Phones of batches whose creation got a final error (never created, as far as the user knows). */
  refused: string[];
  /** HTTP attempts answered with a retryable status or not at all. */
  retried: number;
  /** Requests that ended with a final non-2xx answer. */
  failed: number;
}

/** A user's HTTP call with retries; undefined when `deadline` passed first. */
async function call(
  pick: PickUrl,
  path: string,
  init: { jwt: string; body?: unknown; key?: string },
  deadline: number,
  plan: SendPlan,
): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  for (let attempt = 1; Date.now() < deadline; attempt++) {
    const base = pick();
    if (!base) {
      await sleep(100);
      continue;
    }
    try {
      const response = await fetch(`${base}${path}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${init.jwt}`,
          "content-type": "application/json",
          ...(init.key ? { "idempotency-key": init.key } : {}),
        },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal: AbortSignal.timeout(15_000),
      });
      const body = await response.json().catch(() => ({}));
      const later = response.status >= 500 ||
        ((response.status === 409 || response.status === 429) &&
          response.headers.has("retry-after"));
      if (!later) return { status: response.status, body };
    } catch { /* no answer: retried */ }
    plan.retried++;
    await sleep(Math.min(100 * attempt, 1000));
  }
  return undefined;
}

/** Options of {@link runSendUser}. */
export interface SendUserOptions {
  pick: PickUrl;
  /** Batches created, spread evenly over `seconds`. */
  batches: number;
  recipientsPerBatch: number;
  seconds: number;
  seed: number;
  /** Bound on each request's retries. */
  deadline: number;
}

/** Creates and sends `batches` batches over `seconds`; returns once the last send was accepted. */
export async function runSendUser(options: SendUserOptions): Promise<SendPlan> {
  const owner = crypto.randomUUID();
  const jwt = await mintJwt({ sub: owner });
  const plan: SendPlan = { owner, batches: [], refused: [], retried: 0, failed: 0 };
  const started = Date.now();
  const one = async (n: number) => {
    await sleep(Math.max(0, started + (n * options.seconds * 1000) / options.batches - Date.now()));
    const list = phones(options.recipientsPerBatch, options.seed + n * options.recipientsPerBatch);
    const created = await call(
      options.pick,
      "",
      {
        jwt,
        key: crypto.randomUUID(),
        body: { message: "Hello {{name}}", recipients: list.map((phone) => ({ phone })) },
      },
      options.deadline,
      plan,
    );
    if (created?.status !== 201) {
      plan.failed++;
      plan.refused.push(...list);
      return;
    }
    const id = String(created.body.batch_id);
    plan.batches.push({ id, phones: list });
    const sent = await call(
      options.pick,
      `/${id}/send`,
      { jwt, key: crypto.randomUUID() },
      options.deadline,
      plan,
    );
    if (!sent || sent.status >= 300) plan.failed++;
  };
  await Promise.all(Array.from({ length: options.batches }, (_, n) => one(n)));
  return plan;
}

/**
 * Finishes pending send work after every fault has healed: runs the drain (service role) until no
 * recipient of the plan is pending or processing, or `timeoutMs` passed.
 */
export async function finishSending(
  sql: postgres.Sql,
  pick: PickUrl,
  plan: SendPlan,
  timeoutMs: number,
  log: (line: string) => void,
): Promise<void> {
  const jwt = await mintJwt({ role: "service_role" });
  const deadline = Date.now() + timeoutMs;
  let logged = 0;
  while (Date.now() < deadline) {
    const [{ open }] = await sql<{ open: number }[]>`
      select count(*)::int as open from public.whatsapp_send_recipients
       where owner = ${plan.owner} and status in ('pending', 'processing')`;
    if (open === 0) return;
    if (Date.now() - logged >= 10_000) {
      logged = Date.now();
      log(`  ${open} recipients pending or processing`);
    }
    await call(pick, "/drain", { jwt }, deadline, plan);
    await sleep(1000);
  }
}

/** The send side's figures. */
export interface SendCheck {
  recipients: number;
  /** Never sent nor reported failed/unknown (or reported sent without a provider call). */
  lost: number;
  /** Provider calls beyond one per recipient, batches created twice, row changes changing nothing. */
  doubled: number;
  /** `processing` past its lease; Idempotency-Key rows `in_progress` past their lock (send-batch). */
  stuck: number;
  /** Recipients by final status. */
  statuses: Record<string, number>;
  examples: string[];
}

const RECIPIENT_ID = /(?:^| )id\[uuid\]:'([^']*)'/;
const UPDATED_AT = /updated_at\[[^\]]*\]:'[^']*'/;

/** Checks the plan against the table, the provider's calls and the replication feed. */
export async function checkSend(
  sql: postgres.Sql,
  plan: SendPlan,
  fake: FakeWhatsAppProvider,
  changes: readonly RowChange[],
): Promise<SendCheck> {
  const rows = await sql<
    { id: string; batch_id: string; phone: string; status: string; expired: boolean }[]
  >`
    select id, batch_id, phone, status, coalesce(lease_until < now(), false) as expired
      from public.whatsapp_send_recipients where owner = ${plan.owner}`;
  const [{ batches }] = await sql<{ batches: number }[]>`
    select count(*)::int as batches from public.whatsapp_send_batches where owner = ${plan.owner}`;
  const calls = fake.callsPerRecipient();
  const byPhone = new Map(rows.map((r) => [r.phone, r]));
  const check: SendCheck = {
    recipients: plan.refused.length,
    lost: plan.refused.length,
    doubled: Math.max(0, batches - plan.batches.length),
    stuck: 0,
    statuses: {},
    examples: [],
  };
  const example = (line: string) => check.examples.length < 10 && check.examples.push(line);
  for (const batch of plan.batches) {
    for (const phone of batch.phones) {
      check.recipients++;
      const row = byPhone.get(phone);
      const n = calls.get(phone.slice(1)) ?? 0;
      const status = row?.status ?? "absent";
      check.statuses[status] = (check.statuses[status] ?? 0) + 1;
      if (n > 1) {
        check.doubled += n - 1;
        example(`…${phone.slice(-4)}: ${n} provider calls, ${status}`);
      }
      if (row?.status === "processing" && row.expired) {
        check.stuck++;
        example(`…${phone.slice(-4)}: processing past its lease`);
      } else if (
        !row || row.status === "pending" || row.status === "processing" ||
        (row.status === "sent" && n === 0)
      ) {
        check.lost++;
        example(`…${phone.slice(-4)}: ${status}, ${n} provider calls`);
      }
    }
  }
  // A row change that changes nothing but its time is a Realtime event more than once.
  const ids = new Set(rows.map((r) => r.id));
  const last = new Map<string, string>();
  for (const change of changes) {
    if (change.table !== "public.whatsapp_send_recipients") continue;
    const id = RECIPIENT_ID.exec(change.data)?.[1];
    if (!id || !ids.has(id)) continue;
    const data = change.data.replace(UPDATED_AT, "");
    if (change.op === "UPDATE" && last.get(id) === data) {
      check.doubled++;
      example(`recipient ${id.slice(0, 8)}: a row change that changed nothing`);
    }
    last.set(id, data);
  }
  check.stuck += await stuckKeys(sql, "send-batch");
  return check;
}

/** Idempotency-Key rows of `webhookType` still `in_progress` past their lock. */
export async function stuckKeys(sql: postgres.Sql, webhookType: string): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from public.webhook_idempotency
     where webhook_type = ${webhookType} and state = 'in_progress' and locked_until < now()`;
  return n;
}
