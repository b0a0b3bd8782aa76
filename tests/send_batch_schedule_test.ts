/**
 * The drain schedule endpoint and the rate shared through Upstash by several instances.
 */
import assert from "node:assert/strict";
import { startUpstashRestServer } from "../scripts/lib/upstash_rest_server.ts";
import { UpstashRateLimiter } from "../supabase/functions/_shared/send_batch/rate_limiter.ts";
import { redisUrl, sqlClient } from "./support/env.ts";
import { FakeWhatsAppProvider } from "./support/fake_whatsapp_provider.ts";
import { mintJwt, newUser } from "./support/jwt.ts";
import { call, phones, sendBatchHandler } from "./support/send_batch.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test(
  "POST /drain (service role) resumes a batch whose drain died; a user gets 403",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake);
    const sql = sqlClient(1);
    try {
      const user = await newUser();
      const list = phones(5);
      // The drain resumes every batch with pending work, other tests' leftovers too: count only
      // the calls to this batch's recipients.
      const ours = () => fake.calls.filter((c) => list.includes(`+${c.to}`)).length;
      const created = await call(fn.handler, "POST", "", user.jwt, {
        message: "Hi",
        recipients: list.map((phone) => ({ phone })),
      });
      const batchId = created.body.batch_id;
      // As after a click whose instance died before sending anything: requested, lease lapsed.
      await sql`update public.whatsapp_send_batches
                 set send_requested_at = now(), drain_token = gen_random_uuid(),
                     drain_lease_until = now() - interval '1 second'
               where id = ${batchId}`;
      assert.equal((await call(fn.handler, "POST", "/drain", user.jwt)).status, 403);
      const service = await mintJwt({ role: "service_role" });
      const drained = await call(fn.handler, "POST", "/drain", service);
      assert.equal(drained.status, 200);
      assert.ok(drained.body.started.includes(batchId));
      await fn.service.idle();
      assert.equal(ours(), 5);
      assert.deepEqual(
        [...new Set(fake.calls.filter((c) => list.includes(`+${c.to}`)).map((c) => c.to))].length,
        5,
      );
      const again = await call(fn.handler, "POST", "/drain", service);
      assert.ok(!again.body.started.includes(batchId));
      await fn.service.idle();
      assert.equal(ours(), 5);
    } finally {
      await sql.end();
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "two instances sharing the Upstash limiter stay within the rate together",
  opts,
  async () => {
    const endpoint = await startUpstashRestServer({ redisUrl: redisUrl(), token: "rate-token" });
    try {
      const prefix = `rate-test-${crypto.randomUUID()}`;
      const make = () =>
        new UpstashRateLimiter({
          url: endpoint.url,
          token: "rate-token",
          prefix,
          ratePerSecond: 20,
        });
      const [a, b] = [make(), make()];
      const times: number[] = [];
      await Promise.all([a, b].map(async (limiter) => {
        for (let i = 0; i < 30; i++) {
          await limiter.acquire();
          times.push(performance.now());
        }
      }));
      times.sort((x, y) => x - y);
      let most = 0;
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i] - times[j] >= 1000) j++;
        most = Math.max(most, i - j + 1);
      }
      // Each instance alone paces at 20/s; without the shared bucket the two would reach 40.
      assert.ok(most <= 21, `${most} acquisitions within one second at 20/s`);
    } finally {
      await endpoint.close();
    }
  },
);
