/**
 * The send rate holds while Upstash is down: three drain instances, each sending its own batch
 * with Upstash configured but unreachable, together make no more provider calls in any one-second
 * window than SEND_RATE_PER_SECOND (counted from the calls the fake provider received). Before the
 * database fallback each instance fell back to its own pace: three times the limit.
 */
import assert from "node:assert/strict";
import { freePort } from "../scripts/lib/ports.ts";
import { sqlClient } from "./support/env.ts";
import { FakeWhatsAppProvider } from "./support/fake_whatsapp_provider.ts";
import { newUser } from "./support/jwt.ts";
import { call, phones, sendBatchHandler } from "./support/send_batch.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

/** The most calls received within any one-second window. */
function busiestSecond(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i] - sorted[j] >= 1000) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

Deno.test(
  "Upstash unreachable: 3 instances together stay within SEND_RATE_PER_SECOND in every second",
  opts,
  async () => {
    const rate = 20;
    const perInstance = 25;
    const fake = FakeWhatsAppProvider.start();
    const prefix = `rate-outage-${crypto.randomUUID()}`;
    const env = {
      SEND_RATE_PER_SECOND: String(rate),
      SEND_CONCURRENCY: "64",
      SEND_TIME_BUDGET_MS: "60000",
      // Nothing listens there: every Upstash call fails.
      UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${freePort()}`,
      UPSTASH_REDIS_REST_TOKEN: "unreachable-token",
      SEND_RATE_LIMIT_PREFIX: prefix,
    };
    const instances = [0, 1, 2].map(() => sendBatchHandler(fake, env));
    const sql = sqlClient(1);
    try {
      const user = await newUser();
      const list = phones(perInstance * instances.length);
      const batches = await Promise.all(instances.map(async (fn, i) => {
        const created = await call(fn.handler, "POST", "", user.jwt, {
          message: "Your bus leaves at 9",
          recipients: list.slice(i * perInstance, (i + 1) * perInstance).map((phone) => ({
            phone,
          })),
        });
        assert.equal(created.status, 201);
        return created.body.batch_id as string;
      }));
      const clicks = await Promise.all(
        instances.map((fn, i) => call(fn.handler, "POST", `/${batches[i]}/send`, user.jwt)),
      );
      assert.deepEqual(clicks.map((c) => c.status), [202, 202, 202]);
      await Promise.all(instances.map((fn) => fn.service.idle()));

      assert.equal(fake.calls.length, list.length);
      assert.ok([...fake.callsPerRecipient().values()].every((n) => n === 1));
      const most = busiestSecond(fake.calls.map((c) => c.at));
      assert.ok(most <= rate, `${most} calls within one second at ${rate}/s`);
      const [slots] = await sql<{ n: number }[]>`
        select count(*)::int as n from public.whatsapp_send_rate_slots
         where key = ${`${prefix}:provider`}`;
      assert.equal(slots.n, 1, "the slots came from the database's timeline");
    } finally {
      await sql.end();
      for (const fn of instances) await fn.close();
      await fake.stop();
    }
  },
);
