/**
 * Ambiguous provider answers end `unknown`, never a retryable `failed`: a Graph 500 with code 1
 * ("possible server error") or 503 with code 2, and the 5xx answers of Evolution API and WAHA, may
 * have sent the message, so neither a second click nor a plain retry calls that recipient again;
 * only listing it in `retry` does. A 4xx with the same code 1 proved nothing went out: retryable.
 */
import assert from "node:assert/strict";
import { sqlClient } from "./support/env.ts";
import { type FakeBehaviour, FakeWhatsAppProvider } from "./support/fake_whatsapp_provider.ts";
import { newUser } from "./support/jwt.ts";
import { call, phones, sendBatchHandler } from "./support/send_batch.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function recipients(batchId: string) {
  const sql = sqlClient(1);
  try {
    return [
      ...await sql<
        { id: string; status: string; error_code: string | null; retryable: boolean | null }[]
      >`
        select id, status, error_code, retryable from public.whatsapp_send_recipients
         where batch_id = ${batchId} order by row_number`,
    ];
  } finally {
    await sql.end();
  }
}

for (const kind of ["meta", "evolution", "waha", "twilio"] as const) {
  Deno.test(
    `${kind}: a 500 and a 503 end unknown; a second click and a plain retry send nothing; a listed one is sent again`,
    opts,
    async () => {
      const fake = FakeWhatsAppProvider.start();
      const list = phones(3);
      const first: FakeBehaviour[] = ["server_error", "unavailable", "succeed"];
      fake.behave = (to, n) => (n === 1 ? first[list.indexOf(`+${to}`)] : "succeed");
      const fn = sendBatchHandler(fake, {}, kind);
      try {
        const user = await newUser();
        const created = await call(fn.handler, "POST", "", user.jwt, {
          message: "Your bus leaves at 9",
          recipients: list.map((phone) => ({ phone })),
        });
        assert.equal(created.status, 201);
        const batchId = created.body.batch_id as string;
        await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
        await fn.service.idle();
        const rows = await recipients(batchId);
        assert.deepEqual(rows.map((r) => r.status), ["unknown", "unknown", "sent"]);
        const progress = await call(fn.handler, "GET", `/${batchId}`, user.jwt);
        assert.deepEqual(progress.body.failed, []);
        const reasons = progress.body.unknown.map((u: { reason: string }) => u.reason);
        assert.deepEqual(
          reasons,
          kind === "meta"
            ? ["provider answered 500 (1)", "provider answered 503 (2)"]
            : ["provider answered 500", "provider answered 503"],
        );

        // Neither a second click nor a retry that lists nothing calls them again.
        const again = await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
        assert.equal(again.body.claimed, 0);
        const plain = await call(fn.handler, "POST", `/${batchId}/retry`, user.jwt, {});
        assert.equal(plain.status, 200);
        assert.deepEqual([plain.body.requeued_failed, plain.body.requeued_unknown], [0, 0]);
        await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
        await fn.service.idle();
        assert.equal(fake.calls.length, 3);

        // The user decides: the listed one is sent again, the other stays unknown.
        const listed = await call(fn.handler, "POST", `/${batchId}/retry`, user.jwt, {
          unknown: [rows[0].id],
        });
        assert.equal(listed.body.requeued_unknown, 1);
        await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
        await fn.service.idle();
        assert.deepEqual((await recipients(batchId)).map((r) => r.status), [
          "sent",
          "unknown",
          "sent",
        ]);
        assert.deepEqual(list.map((p) => fake.callsPerRecipient().get(p.slice(1))), [2, 1, 1]);
      } finally {
        await fn.close();
        await fake.stop();
      }
    },
  );
}

Deno.test(
  "meta: answers that prove nothing was sent stay failed or back off (4xx 131026, 130429)",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const list = phones(2);
    fake.behave = (to, n) =>
      to === list[0].slice(1) ? "permanent" : n === 1 ? "throttle" : "succeed";
    const fn = sendBatchHandler(fake, { SEND_BACKOFF_MS: "50" });
    try {
      const user = await newUser();
      const created = await call(fn.handler, "POST", "", user.jwt, {
        message: "Hi",
        recipients: list.map((phone) => ({ phone })),
      });
      const batchId = created.body.batch_id as string;
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      const rows = await recipients(batchId);
      assert.deepEqual(rows.map((r) => [r.status, r.error_code, r.retryable]), [
        ["failed", "131026", false],
        ["sent", null, null],
      ]);
      assert.deepEqual(list.map((p) => fake.callsPerRecipient().get(p.slice(1))), [1, 2]);
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "a throttled call that settles while the drain asks what is pending is sent again in the same drain",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const [phone] = phones(1);
    fake.behave = (_to, n) => (n === 1 ? "throttle" : "succeed");
    // The 130429 answer comes 100 ms after the call: the drain's idle workers ask for pending
    // recipients while it is in flight.
    fake.answerDelayMs = (_to, n) => (n === 1 ? 100 : 0);
    const fn = sendBatchHandler(fake, { SEND_BACKOFF_MS: "50" });
    // The database's "nothing pending" reaches the drain only after the throttled call was
    // recorded (pending again, due in 50 ms): the answer is stale by then.
    const repository = fn.deps.repository;
    const nextPendingInMs = repository.nextPendingInMs.bind(repository);
    repository.nextPendingInMs = async (batchId: string) => {
      const answer = await nextPendingInMs(batchId);
      await new Promise((r) => setTimeout(r, 250));
      return answer;
    };
    try {
      const user = await newUser();
      const created = await call(fn.handler, "POST", "", user.jwt, {
        message: "Hi",
        recipients: [{ phone }],
      });
      const batchId = created.body.batch_id as string;
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      const rows = await recipients(batchId);
      assert.deepEqual(rows.map((r) => r.status), ["sent"]);
      assert.equal(fake.callsPerRecipient().get(phone.slice(1)), 2);
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);
