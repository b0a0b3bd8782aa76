/**
 * The send-batch SQL on its own: the atomic claim under concurrency, lease expiry to `unknown`
 * (never `pending`), the drain lease, and reconciliation from stored statuses.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { sqlClient } from "./support/env.ts";

async function batchWith(sql: postgres.Sql, n: number): Promise<{ batch: string; ids: string[] }> {
  const owner = crypto.randomUUID();
  const [b] = await sql`insert into public.whatsapp_send_batches (owner, message, total)
                        values (${owner}, '{"type":"text","text":"hi"}', ${n}) returning id`;
  const rows = await sql`
    insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone)
    select ${b.id}, ${owner}, g, '+1415' || lpad(g::text, 7, '0') from generate_series(1, ${n}) g
    returning id`;
  return { batch: b.id, ids: rows.map((r) => r.id) };
}

Deno.test("claim: 8 concurrent claimers of 5 each over 100 rows never share a recipient", async () => {
  const sql = sqlClient(8);
  try {
    const { batch } = await batchWith(sql, 100);
    const claims = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const got: string[] = [];
        for (;;) {
          const rows = await sql`select id from public.whatsapp_send_claim(${batch}, 5, 60000)`;
          if (rows.length === 0) return got;
          assert.ok(rows.length <= 5);
          got.push(...rows.map((r) => r.id));
        }
      }),
    );
    const all = claims.flat();
    assert.equal(all.length, 100);
    assert.equal(new Set(all).size, 100);
    const [row] = await sql`select count(*)::int as n from public.whatsapp_send_recipients
                             where batch_id = ${batch} and status = 'processing' and attempts = 1`;
    assert.equal(row.n, 100);
  } finally {
    await sql.end();
  }
});

Deno.test("an expired lease makes the recipient unknown, never pending; a live one is kept", async () => {
  const sql = sqlClient(1);
  try {
    const { batch, ids } = await batchWith(sql, 2);
    await sql`select * from public.whatsapp_send_claim(${batch}, 2, 60000)`;
    await sql`update public.whatsapp_send_recipients set lease_until = now() - interval '1 second'
               where id = ${ids[0]}`;
    const [expired] = await sql`select public.whatsapp_send_expire_leases(${batch}) as n`;
    assert.equal(expired.n, 1);
    const rows = await sql`select id, status, error_code from public.whatsapp_send_recipients
                            where batch_id = ${batch} order by row_number`;
    assert.deepEqual(rows.map((r) => [r.status, r.error_code]), [["unknown", "lease_expired"], [
      "processing",
      null,
    ]]);
    const again = await sql`select id from public.whatsapp_send_claim(${batch}, 10, 60000)`;
    assert.equal(again.length, 0);
  } finally {
    await sql.end();
  }
});

Deno.test("drain lease: one holder at a time; taken over only after it lapses", async () => {
  const sql = sqlClient(1);
  try {
    const { batch } = await batchWith(sql, 1);
    const [t1, t2] = [crypto.randomUUID(), crypto.randomUUID()];
    const take = async (token: string, ms: number) =>
      (await sql`select public.whatsapp_send_acquire_drain(${batch}, ${token}, ${ms}) as ok`)[0].ok;
    assert.equal(await take(t1, 60_000), true);
    assert.equal(await take(t2, 60_000), false);
    assert.equal(await take(t1, 60_000), true);
    await sql`update public.whatsapp_send_batches set drain_lease_until = now() - interval '1 second' where id = ${batch}`;
    assert.equal(await take(t2, 60_000), true);
    await sql`select public.whatsapp_send_release_drain(${batch}, ${t1})`;
    assert.equal(await take(t1, 60_000), false);
    await sql`select public.whatsapp_send_release_drain(${batch}, ${t2})`;
    assert.equal(await take(t1, 60_000), true);
  } finally {
    await sql.end();
  }
});

Deno.test("reconciliation: statuses by provider message id move unknown to sent, record delivered/read; failed after acceptance is recorded", async () => {
  const sql = sqlClient(1);
  try {
    const { batch, ids } = await batchWith(sql, 3);
    const wamid = `wamid.${crypto.randomUUID()}`;
    const failedId = `3EB0${crypto.randomUUID().slice(0, 8)}`;
    await sql`update public.whatsapp_send_recipients set status = 'unknown', provider_message_id = ${wamid} where id = ${
      ids[0]
    }`;
    await sql`update public.whatsapp_send_recipients set status = 'sent', provider_message_id = ${failedId} where id = ${
      ids[1]
    }`;
    await sql`insert into public.whatsapp_messages (account, message_id, direction, status, status_at)
              values ('+14155550000', ${wamid}, 'out', 'delivered', now())`;
    await sql`update public.whatsapp_messages set status = 'read' where message_id = ${wamid}`;
    await sql`insert into public.whatsapp_messages (account, message_id, direction, status, error_code)
              values ('+14155550000', ${failedId}, 'out', 'failed', '131026')`;
    // A status for a message of no batch changes nothing here.
    await sql`insert into public.whatsapp_messages (account, message_id, direction, status)
              values ('+14155550000', ${`other-${crypto.randomUUID()}`}, 'out', 'sent')`;
    const rows = await sql`select status, delivery_status, delivered_at is not null as delivered,
                                  read_at is not null as read, error_code
                             from public.whatsapp_send_recipients where batch_id = ${batch} order by row_number`;
    assert.deepEqual(rows.map((r) => ({ ...r })), [
      { status: "sent", delivery_status: "read", delivered: true, read: true, error_code: null },
      {
        status: "sent",
        delivery_status: "failed",
        delivered: false,
        read: false,
        error_code: "131026",
      },
      { status: "pending", delivery_status: null, delivered: false, read: false, error_code: null },
    ]);
  } finally {
    await sql.end();
  }
});

Deno.test("RLS: a user sees only their batches; auth.uid() reads request.jwt.claims", async () => {
  const sql = sqlClient(1);
  try {
    const { batch } = await batchWith(sql, 1);
    const seen = await sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true),
                      set_config('request.jwt.claims', ${
        JSON.stringify({ sub: crypto.randomUUID(), role: "authenticated" })
      }, true)`;
      const batches = await tx`select id from public.whatsapp_send_batches where id = ${batch}`;
      const recipients =
        await tx`select id from public.whatsapp_send_recipients where batch_id = ${batch}`;
      return batches.length + recipients.length;
    });
    assert.equal(seen, 0);
    // The SQL functions are the function's own: no Data API role may call them.
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true)`;
        await tx`select id from public.whatsapp_send_claim(${batch}, 10, 1000)`;
      }),
      /permission denied for function whatsapp_send_claim/,
    );
  } finally {
    await sql.end();
  }
});

Deno.test("the Data API is read-only for send batches: an owner can change nothing directly", async () => {
  const sql = sqlClient(1);
  try {
    const { batch, ids } = await batchWith(sql, 3);
    const [{ owner }] =
      await sql`select owner from public.whatsapp_send_batches where id = ${batch}`;
    await sql`update public.whatsapp_send_recipients
      set status = 'sent', provider_message_id = 'wamid.X' where id = ${ids[0]}`;
    const asOwner = <T>(work: (tx: postgres.TransactionSql) => Promise<T>) =>
      sql.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true),
                        set_config('request.jwt.claims', ${
          JSON.stringify({ sub: owner, role: "authenticated" })
        }, true)`;
        return await work(tx);
      });
    const seen = await asOwner((tx) =>
      tx`select id from public.whatsapp_send_recipients where batch_id = ${batch}`
    );
    assert.equal(seen.length, 3);
    for (
      const change of [
        (tx: postgres.TransactionSql) =>
          tx`update public.whatsapp_send_recipients set status = 'pending' where id = ${ids[0]}`,
        (tx: postgres.TransactionSql) =>
          tx`delete from public.whatsapp_send_recipients where id = ${ids[1]}`,
        (tx: postgres.TransactionSql) =>
          tx`update public.whatsapp_send_batches set message = '{"type":"text","text":"x"}'
             where id = ${batch}`,
        (tx: postgres.TransactionSql) =>
          tx`insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone)
             values (${batch}, ${owner}, 9, '+14155550009')`,
      ]
    ) {
      await assert.rejects(asOwner(change), /permission denied/);
    }
    const [row] = await sql`select status from public.whatsapp_send_recipients where id = ${
      ids[0]
    }`;
    assert.equal(row.status, "sent");
  } finally {
    await sql.end();
  }
});
