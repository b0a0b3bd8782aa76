/**
 * whatsapp-send-batch in runner processes (scripts/serve_functions.ts), killed while sending:
 * nothing is sent twice, nothing is skipped silently, and the batch goes on without a click.
 */
import assert from "node:assert/strict";
import { databaseUrl, sqlClient, TEST_SECRET } from "./support/env.ts";
import { FakeWhatsAppProvider, providerEnv } from "./support/fake_whatsapp_provider.ts";
import { startFunctionInstance } from "./support/function_instance.ts";
import { newUser } from "./support/jwt.ts";
import { call, eventually, phones } from "./support/send_batch.ts";

const FN = "whatsapp-send-batch";
const opts = { sanitizeResources: false, sanitizeOps: false };

function baseEnv(fake: FakeWhatsAppProvider, extra: Record<string, string>) {
  return {
    SUPABASE_DB_URL: databaseUrl(),
    WEBHOOK_SECRET: TEST_SECRET,
    ...providerEnv(fake, "meta"),
    ...extra,
  };
}

Deno.test(
  "kill the function process while sending (5 done): resend calls only the rest; the in-flight one is unknown until its status webhook",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    let crashed = false;
    // The first five calls succeed, the sixth is accepted and hangs until the process dies.
    fake.behave = () => (crashed || fake.calls.length < 5 ? "succeed" : "hang");
    const env = baseEnv(fake, {
      SEND_RATE_PER_SECOND: "1000",
      SEND_CONCURRENCY: "1",
      SEND_PROVIDER_TIMEOUT_MS: "1000",
      SEND_LEASE_MS: "1500",
      SEND_TIME_BUDGET_MS: "1000",
    });
    const a = await startFunctionInstance(env);
    const sql = sqlClient(1);
    let b: Awaited<ReturnType<typeof startFunctionInstance>> | undefined;
    try {
      const user = await newUser();
      const list = phones(10);
      const created = await call(a.url(FN), "POST", "", user.jwt, {
        message: "Your trip starts tomorrow",
        recipients: list.map((phone) => ({ phone })),
      });
      assert.equal(created.status, 201);
      const batchId = created.body.batch_id;
      const started = await call(a.url(FN), "POST", `/${batchId}/send`, user.jwt);
      assert.equal(started.status, 202);
      await fake.waitForCalls(6);
      await a.kill();
      crashed = true;
      const inFlight = fake.calls[5];

      b = await startFunctionInstance(env);
      // The dead process's lease lapses: its recipient becomes unknown, never pending.
      await eventually(async () => {
        const p = await call(b!.url(FN), "GET", `/${batchId}`, user.jwt);
        return p.body.counts.processing === 0;
      });
      const progress = await call(b.url(FN), "GET", `/${batchId}`, user.jwt);
      assert.deepEqual(progress.body.counts, {
        pending: 4,
        processing: 0,
        sent: 5,
        failed: 0,
        unknown: 1,
      });
      assert.equal(progress.body.unknown[0].phone, `+${inFlight.to}`);
      await eventually(async () => {
        const resend = await call(b!.url(FN), "POST", `/${batchId}/send`, user.jwt);
        return resend.status === 202;
      });
      await eventually(async () => {
        const p = await call(b!.url(FN), "GET", `/${batchId}`, user.jwt);
        return p.body.counts.sent === 9;
      });
      assert.equal(fake.calls.length, 10);
      assert.ok([...fake.callsPerRecipient().values()].every((n) => n === 1));
      // The Cloud API status webhook for the in-flight message resolves it.
      await sql`insert into public.whatsapp_messages (account, message_id, direction, status, status_at, callback_data)
              values ('106540352242922', ${inFlight.messageId}, 'out', 'sent', now(), ${inFlight
        .callbackData!})`;
      const final = await call(b.url(FN), "GET", `/${batchId}`, user.jwt);
      assert.deepEqual(final.body.counts, {
        pending: 0,
        processing: 0,
        sent: 10,
        failed: 0,
        unknown: 0,
      });
    } finally {
      await sql.end();
      await a.stop();
      await b?.stop();
      await fake.stop();
    }
  },
);

Deno.test(
  "1,000 recipients finish with one click, the drain interrupted once (process killed), at most the rate",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const env = baseEnv(fake, {
      SEND_RATE_PER_SECOND: "400",
      SEND_CONCURRENCY: "8",
      SEND_PROVIDER_TIMEOUT_MS: "1000",
      SEND_LEASE_MS: "1500",
      SEND_TIME_BUDGET_MS: "700",
      SEND_DRAIN_INTERVAL_MS: "250",
    });
    const [a, b] = await Promise.all([startFunctionInstance(env), startFunctionInstance(env)]);
    try {
      const user = await newUser();
      const created = await call(a.url(FN), "POST", "", user.jwt, {
        message: "Boarding at 9",
        recipients: phones(1000).map((phone) => ({ phone })),
      });
      assert.equal(created.status, 201);
      const batchId = created.body.batch_id;
      // Any request builds B's handler, which then runs the drain schedule every 250 ms.
      assert.equal((await call(b.url(FN), "GET", `/${batchId}`, user.jwt)).status, 200);
      assert.equal((await call(a.url(FN), "POST", `/${batchId}/send`, user.jwt)).status, 202);
      await fake.waitForCalls(300);
      await a.kill();
      await eventually(async () => {
        const p = await call(b.url(FN), "GET", `/${batchId}`, user.jwt);
        return p.body.counts.pending === 0 && p.body.counts.processing === 0;
      }, 60_000);
      const p = await call(b.url(FN), "GET", `/${batchId}`, user.jwt);
      const perRecipient = fake.callsPerRecipient();
      // At most once each; every recipient sent or listed unknown (the few in flight at the kill).
      assert.ok([...perRecipient.values()].every((n) => n === 1));
      assert.equal(p.body.counts.sent + p.body.counts.unknown, 1000);
      assert.equal(p.body.counts.failed, 0);
      // At most two claims of SEND_CONCURRENCY (8) were open at the kill.
      assert.ok(p.body.counts.unknown <= 16, `${p.body.counts.unknown} unknown`);
      assert.ok(fake.calls.length >= p.body.counts.sent);
      const times = fake.calls.map((c) => c.at).sort((x, y) => x - y);
      let most = 0;
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i] - times[j] >= 1000) j++;
        most = Math.max(most, i - j + 1);
      }
      assert.ok(most <= 401, `${most} calls within one second at 400/s`);
    } finally {
      await a.stop();
      await b.stop();
      await fake.stop();
    }
  },
);
