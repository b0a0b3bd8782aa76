/**
 * Per-webhook costs of the membership function, one delivery at a time: database round trips
 * (counting proxy) and Redis batches and commands (Upstash endpoint) around each delivery.
 */
import { type BenchEnv, sleep } from "../lib/context.ts";
import { type Instance, startInstances } from "../lib/instances.ts";
import type { CostProbe } from "../lib/result.ts";
import { instanceEnv, type Scenario, SECRET, signatureOf, truncateMembership } from "./env.ts";

/** Sends single deliveries one at a time and measures what each cost. */
export async function costProbe(env: BenchEnv): Promise<CostProbe[]> {
  await truncateMembership(env);
  const scenario: Scenario = { id: "probe", label: "probe", strategy: "ours", redis: true };
  const [a, b] = await startInstances(2, "ours", instanceEnv(env, scenario));
  const post = async (instance: Instance, payload: unknown) => {
    const body = JSON.stringify(payload);
    const response = await fetch(instance.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-webhook-signature": signatureOf(SECRET, body),
      },
      body,
    });
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`probe delivery answered ${response.status}`);
  };
  const measure = async (name: string, fn: () => Promise<void>): Promise<CostProbe> => {
    const db0 = env.proxy.stats.roundTrips;
    const r0 = { ...env.upstash.stats };
    await fn();
    await sleep(20);
    return {
      case: name,
      dbRoundTrips: env.proxy.stats.roundTrips - db0,
      redisBatches: env.upstash.stats.requests - r0.requests,
      redisCommands: env.upstash.stats.commands - r0.commands,
    };
  };
  const group = "120363777000000001@g.us";
  const at = Date.now() - 60_000;
  const event = (n: number, session: string) => ({
    event: "join",
    groupJid: group,
    participant: `91990000${String(1000 + n)}@s.whatsapp.net`,
    timestamp: at,
    sessionId: session,
  });
  try {
    // Warm both instances up (connection set-up is not a per-webhook cost).
    await post(a, event(900, "warm"));
    await post(b, event(901, "warm"));
    return [
      await measure("unique event", () => post(a, event(1, "s1"))),
      await measure("same-instance duplicate", () => post(a, event(1, "s2"))),
      await measure("cross-instance duplicate", () => post(b, event(1, "s3"))),
      await measure("webhook with 5 participants", () =>
        post(a, {
          event: "join",
          groupJid: group,
          participants: [2, 3, 4, 5, 6].map((n) => `91990000${1000 + n}@s.whatsapp.net`),
          timestamp: at,
        })),
    ];
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}
