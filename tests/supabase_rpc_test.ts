/**
 * The supabase-js path (`SUPABASE_URL` + service-role key, no `SUPABASE_DB_URL`) calls the same SQL
 * function through `rpc`, against the real database.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import { DatabaseUnavailableError } from "../supabase/functions/_shared/core/exactly_once.ts";
import { SupabaseRpcEventRepository } from "../supabase/functions/_shared/core/db/supabase_rpc_event_repository.ts";
import { membershipApply } from "../supabase/functions/_shared/membership/repository.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { createMembershipWebhookFromConfig } from "../supabase/functions/whatsapp-membership-webhook/handler.ts";
import { freePort } from "../scripts/lib/ports.ts";
import {
  databaseUrl,
  groupRows,
  signature,
  sqlClient,
  TEST_SECRET,
  uniqueGroup,
} from "./support/env.ts";
import { startPostgrestRpc } from "./support/postgrest_rpc.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";

const T = Date.UTC(2026, 10, 22, 5, 0, 0);

Deno.test("supabase-js rpc: same SQL function, same outcomes", async () => {
  const api = startPostgrestRpc(databaseUrl());
  const repo = new SupabaseRpcEventRepository(membershipApply(), {
    url: api.url,
    serviceRoleKey: api.serviceRoleKey,
    timeoutMs: 5000,
  });
  const sql = sqlClient();
  const group = uniqueGroup();
  try {
    const join = { action: "join", groupJid: group, participant: "+919963064165", at: T } as const;
    assert.deepEqual(
      await repo.apply([{ ...join, atSource: "payload" }, { ...join, atSource: "payload" }]),
      [
        { outcome: "applied", participant: "+919963064165", referenceAt: T },
        { outcome: "unchanged", participant: "+919963064165", referenceAt: T },
      ],
    );
    assert.deepEqual(
      (await repo.apply([{ ...join, action: "leave", at: T + 1, atSource: "payload" }]))
        .map((r) => r.outcome),
      ["applied"],
    );
    assert.equal((await groupRows(sql, group))[0].status, "left");
    assert.equal(api.calls, 2);
  } finally {
    await sql.end();
    await api.close();
  }
});

Deno.test("supabase-js rpc: an unreachable or failing Data API is DatabaseUnavailableError", async () => {
  const down = new SupabaseRpcEventRepository(membershipApply(), {
    url: `http://127.0.0.1:${freePort()}`,
    serviceRoleKey: "x",
    timeoutMs: 1000,
  });
  const event = {
    action: "join",
    groupJid: uniqueGroup(),
    participant: "+919963064165",
    at: T,
    atSource: "payload",
  } as const;
  await assert.rejects(down.apply([event]), DatabaseUnavailableError);
  const api = startPostgrestRpc(databaseUrl());
  try {
    const wrongKey = new SupabaseRpcEventRepository(membershipApply(), {
      url: api.url,
      serviceRoleKey: "wrong",
      timeoutMs: 1000,
    });
    await assert.rejects(wrongKey.apply([event]), DatabaseUnavailableError);
  } finally {
    await api.close();
  }
});

Deno.test("handler without SUPABASE_DB_URL goes through rpc end to end", async () => {
  const api = startPostgrestRpc(databaseUrl());
  const { handler, close } = createMembershipWebhookFromConfig(
    parseConfig({
      SUPABASE_URL: api.url,
      SUPABASE_SERVICE_ROLE_KEY: api.serviceRoleKey,
      WEBHOOK_SECRET: TEST_SECRET,
    }),
    silentLogger,
  );
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  try {
    const body = JSON.stringify({
      event: "join",
      groupJid: group,
      phone_number: "+919963064165",
      timestamp: new Date().toISOString(),
    });
    const post = async () =>
      await (await handler(
        new Request("http://x/whatsapp-membership-webhook", {
          method: "POST",
          body,
          headers: { "x-webhook-signature": signature(body) },
        }),
      )).json();
    assert.equal((await post()).results[0].outcome, "applied");
    assert.equal((await post()).results[0].outcome, "duplicate");
    const health = await (await handler(new Request("http://x/whatsapp-membership-webhook/health")))
      .json();
    assert.equal(health.tiers.database.client, "supabase-rpc");
    assert.equal((await feed.changes(group)).length, 1);
  } finally {
    await feed.close();
    await sql.end();
    await close();
    await api.close();
  }
});
