/**
 * The combined chaos run (`--chaos=SECONDS`): both webhooks and send batches under load at once,
 * on several instances of our functions (with Redis behind the Upstash endpoint, the database
 * behind a latency proxy), while the nemesis (`nemesis.ts`) kills and restarts instances,
 * restarts PostgreSQL, stops Redis and the Upstash endpoint, slows Redis and adds database
 * latency. Gateways retry a 5xx or a connection error later and take 2xx/4xx as final. Once every
 * fault has healed, the retries have drained and the drain has finished the send work, a checker
 * reports per function what was lost, doubled and stuck.
 */
import { checkCorrectness } from "../lib/analysis.ts";
import { type BenchContext, redisCommand } from "../lib/context.ts";
import { type Instance, startInstance } from "../lib/instances.ts";
import { startDistantEnv } from "../lib/latency_proxy.ts";
import { emptySendResult, sendPhases, type SendResult, type Target } from "../lib/sender.ts";
import { type Delivery, generateWorkload, prng, type Workload } from "../lib/workload.ts";
import {
  instanceEnv,
  SECRET,
  signatureOf,
  truncateMembership,
  WINDOW_MS,
} from "../membership/env.ts";
import { checkMessages } from "../messages/analysis.ts";
import { MESSAGE_PATH } from "../messages/scenarios.ts";
import { generateMessageWorkload, type MessageWorkload } from "../messages/workload.ts";
import { sliceWorkload } from "../topology/scenarios.ts";
import { FakeWhatsAppProvider, providerEnv } from "../../tests/support/fake_whatsapp_provider.ts";
import { RealtimeChangeFeed } from "../../tests/support/realtime_changes.ts";
import { type FaultCounts, startNemesis } from "./nemesis.ts";
import { checkSend, finishSending, runSendUser, stuckKeys } from "./send_user.ts";

/** One function's figures after the chaos run. */
export interface ChaosFunctionResult {
  function: "whatsapp-membership-webhook" | "whatsapp-message-webhook" | "whatsapp-send-batch";
  /** Webhook deliveries sent (retries not counted), or recipients of the user's batches. */
  deliveries: number;
  /** A real event never stored, or a recipient never sent nor reported failed/unknown. */
  lost: number;
  /** Row (Realtime) changes beyond one per effective change; provider calls beyond one. */
  doubled: number;
  /** `processing` past its lease; Idempotency-Key rows `in_progress` past their lock. */
  stuck: number;
  /** HTTP attempts retried (5xx, or no answer). */
  retried: number;
  /** Deliveries given up by the sender, or ended by a final non-2xx answer. */
  gaveUp: number;
  /** Up to 10 problems, for diagnosis. */
  examples: string[];
}

/** The `chaos` section of the bench JSON. */
export interface ChaosResult {
  seed: number;
  /** Length of the faulty period (the load runs as long; healing and draining come after). */
  seconds: number;
  instances: number;
  /** Faults injected, per kind. */
  faults: FaultCounts;
  /** Instances that exited without being killed (each replaced by a fresh one at once). */
  instanceCrashes: number;
  functions: ChaosFunctionResult[];
  /** Send-batch recipients by final status. */
  sendStatuses: Record<string, number>;
  /** Realtime row changes read from the replication feed, and broadcasts (when on). */
  rowChanges: number;
  broadcasts?: number;
  /** Set when the broadcasts were not exactly one per row change (then doubled is not known). */
  realtimeError?: string;
  /** Wall time of the whole run, healing and checking included. */
  elapsedS: number;
}

/** Send-batch settings of the instances: short leases and budgets, so faults hit mid-drain. */
const SEND_RATE = 20;

/** Runs the chaos row for `seconds`; starts and stops its own proxies, instances and fake. */
export async function runChaos(ctx: BenchContext, seconds: number): Promise<ChaosResult> {
  const { env, options: o, log } = ctx;
  const started = performance.now();
  const seed = o.seed + 4242;
  const random = prng(seed);
  log(`chaos: ${seconds} s, seed ${seed}, ${o.instances} instances…`);
  await truncateMembership(env);
  await env.sql`truncate public.whatsapp_messages`;
  await redisCommand(env, ["FLUSHALL"]);

  const fake = FakeWhatsAppProvider.start();
  const distant = startDistantEnv(env);
  const { env: chaosEnv, dbLink, upstashLink } = distant;
  const vars = {
    ...instanceEnv(chaosEnv, { id: "chaos", label: "", strategy: "ours", redis: true }),
    ...providerEnv(fake, "meta"),
    SEND_RATE_PER_SECOND: String(SEND_RATE),
    SEND_CONCURRENCY: "4",
    SEND_PROVIDER_TIMEOUT_MS: "2000",
    // A claim queued for the rate limiter longer than (lease − provider timeout) / 2 is given
    // back unsent: 3 s here, so that drains of several batches sharing 20/s do not churn.
    SEND_LEASE_MS: "8000",
    SEND_TIME_BUDGET_MS: "5000",
    SEND_DRAIN_INTERVAL_MS: "1000",
    SEND_RATE_LIMIT_PREFIX: `bench-chaos-${crypto.randomUUID()}`,
    // A key whose holder was killed is taken over after 5 s instead of 60.
    IDEMPOTENCY_LEASE_SECONDS: "5",
  };
  const instances: Instance[] = [];
  /** Every instance started, for the final stop; those the nemesis killed; crashes. */
  const everyInstance: Instance[] = [];
  const killed = new Set<Instance>();
  let crashes = 0;
  let closing = false;
  const membershipTargets: Target[] = [];
  const messageTargets: Target[] = [];
  const feed = await RealtimeChangeFeed.open(env.sql);
  let nemesis: ReturnType<typeof startNemesis> | undefined;
  try {
    const place = (index: number, instance: Instance) => {
      everyInstance.push(instance);
      instances[index] = instance;
      // An instance that dies on its own is replaced at once, as the platform would.
      instance.status.then(() => {
        if (closing || killed.has(instance) || instances[index] !== instance) return;
        crashes++;
        log(`  instance ${index} exited on its own; starting a fresh one`);
        membershipTargets[index].alive = false;
        messageTargets[index].alive = false;
        startInstance("ours", vars).then((fresh) => {
          if (closing) fresh.stop();
          else place(index, fresh);
        }, (error) => log(`  could not replace instance ${index}: ${error}`));
      });
      membershipTargets[index] = Object.assign(membershipTargets[index] ?? {}, {
        url: instance.url,
        alive: true,
      });
      messageTargets[index] = Object.assign(messageTargets[index] ?? {}, {
        url: `${instance.baseUrl}${MESSAGE_PATH}`,
        alive: true,
      });
    };
    (await Promise.all(Array.from({ length: o.instances }, () => startInstance("ours", vars))))
      .forEach((instance, index) => place(index, instance));
    const pickSend = () => {
      const live = instances.filter((_, i) => membershipTargets[i].alive);
      if (live.length === 0) return undefined;
      return `${live[Math.floor(random() * live.length)].baseUrl}/functions/v1/whatsapp-send-batch`;
    };

    const endAt = performance.now() + seconds * 1000;
    const deadline = Date.now() + seconds * 1000 + 240_000;
    nemesis = startNemesis({
      env,
      dbLink,
      upstashLink,
      instanceCount: () => instances.length,
      async killInstance(index) {
        membershipTargets[index].alive = false;
        messageTargets[index].alive = false;
        killed.add(instances[index]);
        await instances[index].kill();
      },
      async restartInstance(index) {
        place(index, await startInstance("ours", vars));
      },
      log,
    }, seed);

    const concurrency = Math.max(2, Math.floor(o.concurrency / 4));
    const send = (phases: Delivery[][], targets: Target[], total: SendResult) =>
      sendPhases(phases, targets, {
        concurrency,
        signatures: new Map(phases.flat().map((d) => [d.body, signatureOf(SECRET, d.body)])),
        maxAttempts: 10_000,
        deadlineMs: deadline - Date.now(),
        attemptTimeoutMs: 15_000,
        random: prng(seed + total.deliveries),
        // A gateway retries a 5xx or no answer later; a 4xx is final.
        isFinal: (status) => status < 500,
      }).then((r) => {
        total.deliveries += r.deliveries;
        total.non2xx += r.non2xx;
        total.gaveUp += r.gaveUp + r.rejected;
      });

    // Memberships: slices of one big workload, one after the other, while the run lasts.
    const membershipTotal = emptySendResult(0);
    const slices = sliceWorkload(
      generateWorkload({
        events: Math.min(60_000, seconds * 150),
        sessions: 2,
        lateRetryShare: 0.1,
        groups: 300,
        phones: 400,
        windowMs: WINDOW_MS,
        seed: seed + 1,
        baseTime: Date.now(),
      }),
      Array.from({ length: Math.max(1, seconds) }, () => 150),
    );
    const sentSlices: Workload[] = [];
    const memberships = (async () => {
      for (const slice of slices) {
        if (performance.now() >= endAt || slice.events.length === 0) break;
        sentSlices.push(slice);
        await send(slice.phases, membershipTargets, membershipTotal);
      }
    })();

    // Messages: rounds of fresh message ids while the run lasts.
    const messageTotal = emptySendResult(0);
    const rounds: MessageWorkload[] = [];
    const messages = (async () => {
      for (let round = 0; performance.now() < endAt; round++) {
        const workload = generateMessageWorkload({
          messages: 40,
          sessions: 2,
          lateRetryShare: 0.1,
          seed: seed + 1000 + round,
        });
        rounds.push(workload);
        await send(workload.phases.filter((p) => p.length > 0), messageTargets, messageTotal);
      }
    })();

    // Send batches: a user creates and sends them over the run.
    const batches = Math.max(2, Math.round(seconds / 30));
    const sending = runSendUser({
      pick: pickSend,
      batches,
      recipientsPerBatch: Math.max(20, Math.round((SEND_RATE * seconds * 0.5) / batches)),
      seconds,
      seed: Math.floor(random() * 1e6),
      deadline,
    });

    await new Promise((r) => setTimeout(r, Math.max(0, endAt - performance.now())));
    log("chaos: healing every fault…");
    await nemesis.stop();
    log(`chaos: faults ${JSON.stringify(nemesis.counts)}; draining retries…`);
    const [, , plan] = await Promise.all([memberships, messages, sending]);
    log("chaos: finishing the send work…");
    await finishSending(env.sql, pickSend, plan, 240_000, log);

    // The feed checks one broadcast per row change; a mismatch is reported, not thrown.
    let realtimeError: string | undefined;
    const changes = await feed.changes().catch((error) => {
      realtimeError = String(error).slice(0, 500);
      return [];
    });
    const membership = mergeMembership(sentSlices);
    const memberCheck = await checkCorrectness(env.sql, changes, membership);
    const messageWorkload = mergeMessages(rounds);
    const messageCheck = await checkMessages(
      env.sql,
      "whatsapp_messages",
      changes,
      messageWorkload,
    );
    const sendCheck = await checkSend(env.sql, plan, fake, changes);
    const result: ChaosResult = {
      seed,
      seconds,
      instances: o.instances,
      faults: { ...nemesis.counts },
      instanceCrashes: crashes,
      functions: [
        {
          function: "whatsapp-membership-webhook",
          deliveries: membershipTotal.deliveries,
          lost: memberCheck.lost,
          doubled: memberCheck.leaked,
          stuck: await stuckKeys(env.sql, "membership"),
          retried: membershipTotal.non2xx,
          gaveUp: membershipTotal.gaveUp,
          examples: memberCheck.examples,
        },
        {
          function: "whatsapp-message-webhook",
          deliveries: messageTotal.deliveries,
          lost: messageCheck.lost,
          doubled: messageCheck.leaked,
          stuck: await stuckKeys(env.sql, "messages"),
          retried: messageTotal.non2xx,
          gaveUp: messageTotal.gaveUp,
          examples: [],
        },
        {
          function: "whatsapp-send-batch",
          deliveries: sendCheck.recipients,
          lost: sendCheck.lost,
          doubled: sendCheck.doubled,
          stuck: sendCheck.stuck,
          retried: plan.retried,
          gaveUp: plan.failed,
          examples: sendCheck.examples,
        },
      ],
      sendStatuses: sendCheck.statuses,
      rowChanges: changes.length,
      broadcasts: feed.broadcasting && !realtimeError ? feed.broadcasts().length : undefined,
      realtimeError,
      elapsedS: (performance.now() - started) / 1000,
    };
    for (const f of result.functions) {
      log(
        `  ${f.function}: ${f.deliveries} deliveries, lost ${f.lost}, doubled ${f.doubled}, ` +
          `stuck ${f.stuck} (${f.retried} retried, ${f.gaveUp} given up)`,
      );
      for (const line of f.examples) log(`    ${line}`);
    }
    log(
      `  send recipients: ${JSON.stringify(result.sendStatuses)}; ${result.rowChanges} row ` +
        `changes, ${result.broadcasts ?? "no"} broadcasts${
          realtimeError ? `: ${realtimeError}` : ""
        }`,
    );
    return result;
  } finally {
    closing = true;
    await nemesis?.stop().catch(() => {});
    await feed.close().catch(() => {});
    await Promise.all(everyInstance.map((i) => i.stop().catch(() => {})));
    distant.close();
    await fake.stop().catch(() => {});
  }
}

/** The membership slices that were sent, as one workload to check. */
function mergeMembership(slices: readonly Workload[]): Workload {
  return {
    pairs: slices.flatMap((s) => s.pairs),
    events: slices.flatMap((s) => s.events),
    phases: [],
    deliveries: slices.reduce((n, s) => n + s.deliveries, 0),
  };
}

/** The message rounds that were sent, as one workload to check. */
function mergeMessages(rounds: readonly MessageWorkload[]): MessageWorkload {
  return {
    incoming: rounds.flatMap((r) => r.incoming),
    outgoing: rounds.flatMap((r) => r.outgoing),
    events: rounds.reduce((n, r) => n + r.events, 0),
    phases: [],
    deliveries: rounds.reduce((n, r) => n + r.deliveries, 0),
  };
}
