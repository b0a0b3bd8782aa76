/**
 * whatsapp-send-batch at scale: the recipient limit (`SEND_MAX_RECIPIENTS`, beyond the former
 * 10,000), uploads read as they stream in, and the maintained counts per batch
 * (public.whatsapp_send_batch_counts) that the progress GET reads, compared with count(*) after
 * every kind of write: create, claims, outcomes, lease expiry, status webhooks and retry.
 */
import assert from "node:assert/strict";
import { scanJsonBody } from "../supabase/functions/_shared/send_batch/recipients_input.ts";
import { sqlClient } from "./support/env.ts";
import { FakeWhatsAppProvider } from "./support/fake_whatsapp_provider.ts";
import { newUser } from "./support/jwt.ts";
import { call, phones, sendBatchHandler } from "./support/send_batch.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

/** A limit above the former 10,000 yet small enough for a fast test. */
const LIMIT = 10_500;

Deno.test(
  "SEND_MAX_RECIPIENTS: a batch over 10,000 is accepted up to the limit and refused above it",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake, { SEND_MAX_RECIPIENTS: String(LIMIT) });
    const small = sendBatchHandler(fake, {
      SEND_MAX_RECIPIENTS: String(LIMIT),
      SEND_MAX_UPLOAD_BYTES: "1000",
    });
    const sql = sqlClient(1);
    try {
      const user = await newUser();
      const list = phones(LIMIT + 1);
      const json = await call(fn.handler, "POST", "", user.jwt, {
        message: "Hi {{name}}",
        recipients: list.slice(0, LIMIT).map((phone, i) => ({ phone, name: `P${i}` })),
      });
      assert.equal(json.status, 201, JSON.stringify(json.body).slice(0, 300));
      assert.equal(json.body.accepted, LIMIT);
      const batchId = json.body.batch_id as string;
      const [stored] = await sql`
        select b.total, (select count(*)::int from public.whatsapp_send_recipients r
                          where r.batch_id = b.id) as n,
               (select max(row_number) from public.whatsapp_send_recipients r
                 where r.batch_id = b.id) as last_row
          from public.whatsapp_send_batches b where b.id = ${batchId}`;
      assert.deepEqual({ ...stored }, { total: LIMIT, n: LIMIT, last_row: LIMIT });
      const progress = await call(fn.handler, "GET", `/${batchId}`, user.jwt);
      assert.equal(progress.body.counts.pending, LIMIT);

      const csv = await call(
        fn.handler,
        "POST",
        "?message=Hi",
        user.jwt,
        ["phone", ...list.slice(0, LIMIT)].join("\n"),
        "text/csv",
      );
      assert.equal(csv.status, 201, JSON.stringify(csv.body).slice(0, 300));
      assert.equal(csv.body.accepted, LIMIT);

      const before = await sql`
        select count(*)::int as n from public.whatsapp_send_batches where owner = ${user.id}`;
      const overJson = await call(fn.handler, "POST", "", user.jwt, {
        message: "Hi",
        recipients: list,
      });
      assert.equal(overJson.status, 400);
      assert.equal(overJson.body.error, "too_many_recipients");
      assert.deepEqual(overJson.body.issues.map((i: { path: string }) => i.path), ["recipients"]);
      assert.match(overJson.body.message, new RegExp(`at most ${LIMIT} recipients`));
      const overCsv = await call(
        fn.handler,
        "POST",
        "?message=Hi",
        user.jwt,
        ["phone", ...list].join("\n"),
        "text/csv",
      );
      assert.equal(overCsv.status, 400);
      assert.equal(overCsv.body.error, "too_many_recipients");
      assert.deepEqual(overCsv.body.issues.map((i: { path: string }) => i.path), ["(body)"]);
      const tooBig = await call(small.handler, "POST", "", user.jwt, {
        message: "Hi",
        recipients: list.slice(0, 100),
      });
      assert.equal(tooBig.status, 413);
      assert.deepEqual(tooBig.body.issues.map((i: { path: string }) => i.path), ["(body)"]);
      const after = await sql`
        select count(*)::int as n from public.whatsapp_send_batches where owner = ${user.id}`;
      assert.equal(after[0].n, before[0].n, "a refused upload writes nothing");
    } finally {
      await sql.end();
      await fn.close();
      await small.close();
      await fake.stop();
    }
  },
);

Deno.test("a JSON body is read the same whatever its chunks", async () => {
  const body = JSON.stringify({
    message: { type: "text", text: 'Hi {{name}} ]}"' },
    recipients: [{ phone: "+14155552671", name: 'a"]}', variables: { x: 1 } }, 14155552672, null],
    owner: "x",
  });
  for (const size of [1, 3, 64, body.length]) {
    const rows: unknown[] = [];
    const scanned = await scanJsonBody(
      (async function* () {
        for (let i = 0; i < body.length; i += size) yield body.slice(i, i + size);
      })(),
      (row) => rows.push(row),
    );
    const parsed = JSON.parse(body);
    assert.deepEqual(rows, parsed.recipients, `chunks of ${size}`);
    assert.deepEqual(scanned.fields, { message: parsed.message, owner: "x" });
    assert.equal(scanned.recipientsArray, true);
  }
  for (const bad of ["{x", '{"recipients":[1,]}', '{"a":1}x', '{"recipients":[1']) {
    await assert.rejects(
      scanJsonBody(
        (async function* () {
          yield bad;
        })(),
        () => {},
      ),
      { name: "MalformedJsonError" },
      bad,
    );
  }
});

Deno.test(
  "progress counts are maintained right through claims, outcomes, lease expiry, webhooks and retry",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const list = phones(8);
    const bad = list[0].slice(1);
    const hang = list[1].slice(1);
    const throttled = list[2].slice(1);
    fake.behave = (to, n) =>
      to === bad
        ? "permanent"
        : to === hang && n === 1
        ? "hang"
        : to === throttled && n === 1
        ? "throttle"
        : "succeed";
    const fn = sendBatchHandler(fake, { SEND_PROVIDER_TIMEOUT_MS: "300" });
    const sql = sqlClient(1);
    try {
      const user = await newUser();
      const created = await call(fn.handler, "POST", "", user.jwt, {
        message: "Hi",
        recipients: list.map((phone) => ({ phone })),
      });
      assert.equal(created.status, 201);
      const batchId = created.body.batch_id as string;
      /** The progress GET against count(*) over the batch's recipients. */
      const check = async (step: string) => {
        const progress = await call(fn.handler, "GET", `/${batchId}`, user.jwt);
        assert.equal(progress.status, 200, step);
        const [counted] = await sql<Record<string, number>[]>`
          select count(*) filter (where status = 'pending')::int as pending,
                 count(*) filter (where status = 'processing')::int as processing,
                 count(*) filter (where status = 'sent')::int as sent,
                 count(*) filter (where status = 'failed')::int as failed,
                 count(*) filter (where status = 'unknown')::int as unknown,
                 count(*) filter (where delivered_at is not null)::int as delivered,
                 count(*) filter (where read_at is not null)::int as read
            from public.whatsapp_send_recipients where batch_id = ${batchId}`;
        const { delivered, read, ...statuses } = counted;
        assert.deepEqual(progress.body.counts, statuses, step);
        assert.deepEqual([progress.body.delivered, progress.body.read], [delivered, read], step);
        return progress.body;
      };
      assert.equal((await check("created")).counts.pending, 8);

      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      const sent = await check("sent once");
      assert.deepEqual(sent.counts, { pending: 0, processing: 0, sent: 6, failed: 1, unknown: 1 });

      // A status webhook moves the unknown recipient to sent and marks it delivered, then read.
      const hung = fake.calls.find((c) => c.to === hang)!;
      await sql`insert into public.whatsapp_messages
                  (account, message_id, direction, status, status_at, callback_data)
                values ('106540352242922', ${hung.messageId}, 'out', 'delivered', now(),
                        ${hung.callbackData!})`;
      const reconciled = await check("reconciled");
      assert.equal(reconciled.counts.sent, 7);
      assert.equal(reconciled.delivered, 1);
      await sql`update public.whatsapp_messages set status = 'read'
                 where message_id = ${hung.messageId}`;
      assert.equal((await check("read")).read, 1);

      // A claim whose lease lapses: processing, then unknown at the next progress read.
      await sql`update public.whatsapp_send_recipients set retryable = true
                 where batch_id = ${batchId} and status = 'failed'`;
      const retried = await call(fn.handler, "POST", `/${batchId}/retry`, user.jwt, {});
      assert.equal(retried.body.requeued_failed, 1);
      assert.equal((await check("requeued")).counts.pending, 1);
      await sql`select * from public.whatsapp_send_claim(${batchId}::uuid, 10, 1)`;
      const [{ processing }] = await sql`
        select count(*)::int as processing from public.whatsapp_send_recipients
         where batch_id = ${batchId} and status = 'processing'`;
      assert.equal(processing, 1);
      await new Promise((r) => setTimeout(r, 20));
      const expired = await check("lease expired");
      assert.deepEqual(expired.counts, {
        pending: 0,
        processing: 0,
        sent: 7,
        failed: 0,
        unknown: 1,
      });

      // Retry of the listed unknown recipient, then a second send: it is called again.
      const unknownId = expired.unknown[0].id as string;
      const again = await call(fn.handler, "POST", `/${batchId}/retry`, user.jwt, {
        unknown: [unknownId],
      });
      assert.equal(again.body.requeued_unknown, 1);
      await check("unknown requeued");
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      const done = await check("sent again");
      assert.deepEqual(done.counts, { pending: 0, processing: 0, sent: 7, failed: 1, unknown: 0 });

      // Deleting recipients (service role) takes them out of the counts too.
      await sql`delete from public.whatsapp_send_recipients
                 where batch_id = ${batchId} and status = 'failed'`;
      assert.equal((await check("deleted")).counts.failed, 0);
    } finally {
      await sql.end();
      await fn.close();
      await fake.stop();
    }
  },
);
