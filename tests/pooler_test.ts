/**
 * The database clients behind a real PgBouncer in transaction mode (as Supabase's pooler runs):
 * they connect (no startup parameter the pooler refuses), leave no session state on the shared
 * server connection, bound each statement on the server, and each call is one round trip on the
 * wire (counted by a proxy between the client and PgBouncer).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { startPgCountingProxy } from "../bench/lib/pg_counting_proxy.ts";
import { startPgBouncer } from "../scripts/lib/pgbouncer_server.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { oneTrip } from "../supabase/functions/_shared/core/db/one_trip.ts";
import { createPostgresPool } from "../supabase/functions/_shared/core/db/postgres_pool.ts";
import { PostgresIdempotencyStore } from "../supabase/functions/_shared/core/idempotency/postgres_store.ts";
import type { MembershipEvent } from "../supabase/functions/_shared/membership/event.ts";
import { PostgresEventRepository } from "../supabase/functions/_shared/core/db/postgres_event_repository.ts";
import { membershipApply } from "../supabase/functions/_shared/membership/repository.ts";
import type { MessageEvent } from "../supabase/functions/_shared/messages/event.ts";
import { messageApply } from "../supabase/functions/_shared/messages/repository.ts";
import { SendBatchRepository } from "../supabase/functions/_shared/send_batch/repository.ts";
import { postgresStatsReader } from "../supabase/functions/webhook-stats/handler.ts";
import type { StatsConfig } from "../supabase/functions/webhook-stats/config.ts";
import { databaseUrl, uniqueGroup } from "./support/env.ts";

const TIMEOUT_MS = 5000;

/** A PgBouncer with one server connection, so that every client shares it. */
async function withPgBouncer(run: (url: string, port: number) => Promise<void>): Promise<void> {
  const bouncer = await startPgBouncer({
    databaseUrl: databaseUrl(),
    port: freePort(),
    poolSize: 1,
  });
  try {
    await run(bouncer.url, bouncer.port);
  } finally {
    await bouncer.stop();
  }
}

function membershipEvent(): MembershipEvent {
  return {
    action: "join",
    groupJid: uniqueGroup(),
    participant: "+919963064165",
    at: Date.now() - 1000,
    atSource: "payload",
  } as MembershipEvent;
}

function messageEvent(): MessageEvent {
  return {
    kind: "message",
    account: "+14155550100",
    messageId: `wamid.pooler-${crypto.randomUUID()}`,
    at: Date.now() - 1000,
    chat: "+14155550101",
    fromMe: false,
    type: "text",
    body: "it's a \\ test",
  };
}

Deno.test("pooler: the pool connects through PgBouncer in transaction mode and its calls work", async () => {
  await withPgBouncer(async (url) => {
    const sql = createPostgresPool({
      url,
      poolMax: 2,
      timeoutMs: TIMEOUT_MS,
      applicationName: "t",
    });
    const membership = new PostgresEventRepository(membershipApply(), {
      url,
      poolMax: 2,
      timeoutMs: TIMEOUT_MS,
    });
    const messages = new PostgresEventRepository(messageApply, {
      url,
      poolMax: 2,
      timeoutMs: TIMEOUT_MS,
    });
    const idempotency = new PostgresIdempotencyStore({ url, poolMax: 2, timeoutMs: TIMEOUT_MS });
    const stats = postgresStatsReader({ databaseUrl: url, timeoutMs: TIMEOUT_MS } as StatsConfig);
    try {
      const [row] = await oneTrip(sql, TIMEOUT_MS)<{ n: number }>`select ${41}::int + 1 as n`;
      assert.equal(row.n, 42);

      const join = membershipEvent();
      assert.deepEqual((await membership.apply([join])).map((r) => r.outcome), ["applied"]);
      assert.deepEqual((await membership.apply([join])).map((r) => r.outcome), ["unchanged"]);

      const message = messageEvent();
      assert.deepEqual((await messages.apply([message])).map((r) => r.outcome), ["applied"]);
      assert.deepEqual((await messages.apply([message])).map((r) => r.outcome), ["unchanged"]);

      const input = {
        scope: "pooler-test",
        key: crypto.randomUUID(),
        webhookType: "membership",
        fingerprint: "f".repeat(64),
        leaseMs: 5000,
        ttlSeconds: 60,
      };
      const begun = await idempotency.begin(input);
      assert.equal(begun.kind, "started");
      const body = new Uint8Array([0, 1, 39, 92, 255]);
      const token = (begun as { token: string }).token;
      assert.equal(
        await idempotency.complete(input.scope, input.key, token, {
          status: 200,
          contentType: "application/json",
          body,
        }),
        true,
      );
      const replay = await idempotency.begin(input);
      assert.equal(replay.kind, "replay");
      assert.deepEqual((replay as { response: { body: Uint8Array } }).response.body, body);
      await idempotency.countReplays([{ scope: input.scope, key: input.key, count: 2 }]);
      assert.equal(typeof (await stats.read()).total, "number");
    } finally {
      await Promise.all([
        sql.end(),
        membership.close(),
        messages.close(),
        idempotency.close(),
        stats.close(),
      ]);
    }
  });
});

Deno.test("pooler: the old pool's statement_timeout startup parameter is refused by PgBouncer", async () => {
  await withPgBouncer(async (url) => {
    const old = postgres(url, {
      max: 1,
      prepare: false,
      connection: { application_name: "t", statement_timeout: TIMEOUT_MS },
      onnotice: () => {},
    });
    try {
      await assert.rejects(old`select 1`, /unsupported startup parameter: statement_timeout/);
    } finally {
      await old.end({ timeout: 1 });
    }
  });
});

Deno.test("pooler: a call's statement timeout holds on the server and leaves no session state", async () => {
  await withPgBouncer(async (url) => {
    // Two clients, one server connection behind PgBouncer.
    const a = createPostgresPool({ url, poolMax: 1, timeoutMs: TIMEOUT_MS, applicationName: "a" });
    const b = createPostgresPool({ url, poolMax: 1, timeoutMs: TIMEOUT_MS, applicationName: "b" });
    try {
      await assert.rejects(
        oneTrip(a, 200)`select pg_sleep(${2})`,
        /canceling statement due to statement timeout/,
      );
      const [{ timeout }] = await oneTrip(a, 300)<{ timeout: string }>`
        select current_setting('statement_timeout') as timeout`;
      assert.equal(timeout, "300ms");
      // The same server connection, next transaction: the server's default again.
      const [after] = await b<{ timeout: string; pid: number }[]>`
        select current_setting('statement_timeout') as timeout, pg_backend_pid() as pid`;
      const [before] = await a<{ pid: number }[]>`select pg_backend_pid() as pid`;
      assert.equal(after.pid, before.pid, "PgBouncer shares its one server connection");
      assert.equal(after.timeout, "0");
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });
});

Deno.test("pooler: each call of the functions' database clients is one round trip on the wire", async () => {
  await withPgBouncer(async (_url, port) => {
    const proxy = startPgCountingProxy(port);
    const url = proxy.urlFor(databaseUrl());
    const sql = createPostgresPool({
      url,
      poolMax: 1,
      timeoutMs: TIMEOUT_MS,
      applicationName: "t",
    });
    const membership = new PostgresEventRepository(membershipApply(), {
      url,
      poolMax: 1,
      timeoutMs: TIMEOUT_MS,
    });
    const messages = new PostgresEventRepository(messageApply, {
      url,
      poolMax: 1,
      timeoutMs: TIMEOUT_MS,
    });
    const idempotency = new PostgresIdempotencyStore({ url, poolMax: 1, timeoutMs: TIMEOUT_MS });
    const stats = postgresStatsReader({ databaseUrl: url, timeoutMs: TIMEOUT_MS } as StatsConfig);
    const sendBatch = new SendBatchRepository({ url, poolMax: 1, timeoutMs: TIMEOUT_MS });
    const batchId = crypto.randomUUID();
    const recipient = { id: crypto.randomUUID(), phone: "+14155550102", name: null, variables: {} };
    const roundTrips = async (call: () => Promise<unknown>) => {
      const before = proxy.stats.roundTrips;
      await call();
      return proxy.stats.roundTrips - before;
    };
    try {
      // Connect every pool first (set-up is not a call).
      await Promise.all([
        sql`select 1`,
        membership.apply([membershipEvent()]),
        messages.apply([messageEvent()]),
        idempotency.countReplays([{ scope: "pooler-test", key: "warm", count: 1 }]),
        stats.read(),
        sendBatch.messageOf(batchId),
      ]);
      // What postgres.js costs without prepared statements: Parse/Describe/Flush, then
      // Bind/Execute/Sync once the parameter types are back.
      assert.equal(await roundTrips(() => sql`select ${1}::int as n`), 2);

      const input = {
        scope: "pooler-test",
        key: crypto.randomUUID(),
        webhookType: "membership",
        fingerprint: "f".repeat(64),
        leaseMs: 5000,
        ttlSeconds: 60,
      };
      let token = "";
      const measured = {
        membershipApply: await roundTrips(() => membership.apply([membershipEvent()])),
        messageApply: await roundTrips(() => messages.apply([messageEvent(), messageEvent()])),
        idempotencyBegin: await roundTrips(async () => {
          token = ((await idempotency.begin(input)) as { token: string }).token;
        }),
        idempotencyComplete: await roundTrips(() =>
          idempotency.complete(input.scope, input.key, token, {
            status: 200,
            contentType: null,
            body: new Uint8Array([1]),
          })
        ),
        idempotencyCountReplays: await roundTrips(() =>
          idempotency.countReplays([{ scope: input.scope, key: input.key, count: 1 }])
        ),
        idempotencyRelease: await roundTrips(() =>
          idempotency.release(input.scope, input.key, crypto.randomUUID())
        ),
        stats: await roundTrips(() => stats.read()),
        drainClaim: await roundTrips(() => sendBatch.claimForDrain(batchId, 10, 5000)),
        drainRenew: await roundTrips(() =>
          sendBatch.renewDrain(batchId, crypto.randomUUID(), 5000)
        ),
        drainRecordSent: await roundTrips(() =>
          sendBatch.recordSent({ ...recipient, attempts: 1 }, "wamid.x")
        ),
        drainRecordFailed: await roundTrips(() =>
          sendBatch.recordFailed({ ...recipient, attempts: 1 }, "131026", "it's \\ odd", false)
        ),
        drainNextPending: await roundTrips(() => sendBatch.nextPendingInMs(batchId)),
      };
      assert.deepEqual(measured, {
        membershipApply: 1,
        messageApply: 1,
        idempotencyBegin: 1,
        idempotencyComplete: 1,
        idempotencyCountReplays: 1,
        idempotencyRelease: 1,
        stats: 1,
        drainClaim: 1,
        drainRenew: 1,
        drainRecordSent: 1,
        drainRecordFailed: 1,
        drainNextPending: 1,
      });
    } finally {
      await Promise.all([
        sql.end(),
        membership.close(),
        messages.close(),
        idempotency.close(),
        stats.close(),
        sendBatch.close(),
      ]);
      proxy.close();
    }
  });
});
