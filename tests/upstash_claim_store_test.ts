/**
 * The Redis tier through `@upstash/redis`, against the local Upstash-compatible endpoint backed by
 * the real Redis server.
 */
import assert from "node:assert/strict";
import { createClient } from "@redis/client";
import { ClaimStoreUnavailableError } from "../supabase/functions/_shared/core/claims/claim_store.ts";
import { UpstashClaimStore } from "../supabase/functions/_shared/core/claims/upstash_claim_store.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { startUpstashRestServer } from "../scripts/lib/upstash_rest_server.ts";
import { redisUrl } from "./support/env.ts";

const TOKEN = "test-upstash-token";

async function setup() {
  const endpoint = await startUpstashRestServer({ redisUrl: redisUrl(), token: TOKEN });
  const prefix = `t${crypto.randomUUID().slice(0, 8)}`;
  const store = new UpstashClaimStore({
    url: endpoint.url,
    token: TOKEN,
    ttlMs: 60_000,
    timeoutMs: 300,
    keyPrefix: prefix,
  });
  const redis = createClient({ url: redisUrl(), RESP: 2 });
  await redis.connect();
  return {
    endpoint,
    store,
    redis,
    prefix,
    async close() {
      redis.destroy();
      await endpoint.close();
    },
  };
}

Deno.test("redis tier: SET NX PX GET claims once, in one pipeline for many keys", async () => {
  const t = await setup();
  try {
    const before = t.endpoint.stats.requests;
    assert.deepEqual(
      await t.store.claim([{ key: "a", at: 0 }, { key: "b", at: 0 }, { key: "a", at: 0 }]),
      ["claimed", "claimed", "in-flight"],
    );
    assert.equal(t.endpoint.stats.requests - before, 1, "one round trip");
    const ttl = Number(await t.redis.sendCommand(["PTTL", `${t.prefix}:a`]));
    assert.ok(ttl > 55_000 && ttl <= 60_000, `TTL ${ttl}`);
  } finally {
    await t.close();
  }
});

Deno.test("redis tier: only a confirmed claim within the copy window is 'held'", async () => {
  const t = await setup();
  try {
    await t.store.claim([{ key: "a", at: 10_000 }, { key: "b", at: 10_000 }]);
    assert.deepEqual(await t.store.claim([{ key: "a", at: 10_000 }]), ["in-flight"]);
    // Confirmed as soon as the database has it (after the response, through waitUntil).
    await t.store.confirm([{ key: "a", at: 10_000 }]);
    const before = t.endpoint.stats.requests;
    assert.deepEqual(
      await t.store.claim([{ key: "a", at: 10_400 }, { key: "c", at: 10_000 }]),
      ["held", "claimed"],
    );
    assert.equal(t.endpoint.stats.requests - before, 1, "one round trip");
    assert.equal(await t.redis.sendCommand(["GET", `${t.prefix}:a`]), "d:10000");
    // Same key, but an event time outside the copy window (a real rejoin in the same bucket):
    // the database decides.
    assert.deepEqual(await t.store.claim([{ key: "a", at: 12_000 }]), ["in-flight"]);
  } finally {
    await t.close();
  }
});

Deno.test("redis tier: a copy waits for another instance's claim, never trusts an unconfirmed one", async () => {
  const t = await setup();
  const other = new UpstashClaimStore({
    url: t.endpoint.url,
    token: TOKEN,
    ttlMs: 60_000,
    timeoutMs: 300,
    keyPrefix: t.prefix,
    inFlightWaitMs: 300,
  });
  try {
    // Instance A claims; B's copy arrives while A applies, and A confirms 50 ms later.
    assert.deepEqual(await t.store.claim([{ key: "k", at: 5_000 }]), ["claimed"]);
    setTimeout(() => t.store.confirm([{ key: "k", at: 5_000 }]), 50);
    assert.deepEqual(await other.claim([{ key: "k", at: 5_002 }]), ["held"]);
    assert.equal(other.waits.confirmedInTime, 1);
    // A claim left by an instance that died before confirming: after the wait, the database
    // decides (never "held").
    await t.redis.sendCommand(["SET", `${t.prefix}:dead`, "p:gone:1", "PX", "60000"]);
    assert.deepEqual(await other.claim([{ key: "dead", at: 0 }]), ["in-flight"]);
    // After the database had it, this instance confirms it for the others.
    await other.confirm([{ key: "dead", at: 0 }]);
    assert.equal(await t.redis.sendCommand(["GET", `${t.prefix}:dead`]), "d:0");
    // A claim released after a failed apply: the waiting copy goes to the database.
    assert.deepEqual(await t.store.claim([{ key: "failed", at: 0 }]), ["claimed"]);
    setTimeout(() => t.store.release(["failed"]), 30);
    assert.deepEqual(await other.claim([{ key: "failed", at: 0 }]), ["in-flight"]);
  } finally {
    await other.close();
    await t.close();
  }
});

Deno.test("redis tier: a claim's token carries its time; overdue, skewed or untimed, the copy waits for it", async () => {
  const t = await setup();
  try {
    assert.deepEqual(await t.store.claim([{ key: "own", at: 0 }]), ["claimed"]);
    const own = String(await t.redis.sendCommand(["GET", `${t.prefix}:own`]));
    const at = Number(own.split(":")[3]);
    assert.ok(Math.abs(at - Date.now()) < 5_000, `claim time in the token: ${own}`);
    // Another instance's claim, long overdue (its confirmation is in flight), from a clock ahead
    // of this one, and from an instance that writes no time: each is confirmed 20 ms later.
    const claims = {
      overdue: `p:other:1:${Date.now() - 10_000}`,
      ahead: `p:other:2:${Date.now() + 60_000}`,
      untimed: "p:other:3",
    };
    for (const [key, token] of Object.entries(claims)) {
      await t.redis.sendCommand(["SET", `${t.prefix}:${key}`, token, "PX", "60000"]);
      setTimeout(() => {
        t.redis.sendCommand(["SET", `${t.prefix}:${key}`, "d:7000", "KEEPTTL"]);
      }, 20);
      assert.deepEqual(await t.store.claim([{ key, at: 7_001 }]), ["held"], key);
    }
  } finally {
    await t.close();
  }
});

Deno.test("redis tier: a rejoin is never a copy of the join before the leave (subjects)", async () => {
  const t = await setup();
  const person = { subject: "g|+15550001" };
  const ev = (key: string, action: string, at: number) => ({ key, at, action, ...person });
  try {
    assert.deepEqual(await t.store.claim([ev("join|b0", "join", 100)]), ["claimed"]);
    await t.store.confirm([ev("join|b0", "join", 100)]);
    assert.deepEqual(await t.store.claim([ev("join|b0", "join", 103)]), ["held"]);
    assert.deepEqual(await t.store.claim([ev("leave|b0", "leave", 300)]), ["claimed"]);
    await t.store.confirm([ev("leave|b0", "leave", 300)]);
    // join at 500: within the copy window of the join at 100, but the leave lies between.
    assert.deepEqual(await t.store.claim([ev("join|b0", "join", 500)]), ["in-flight"]);
    await t.store.confirm([ev("join|b0", "join", 500)]);
    // Its copy, and a late copy of the first join, are copies.
    assert.deepEqual(await t.store.claim([ev("join|b0", "join", 504)]), ["held"]);
    assert.deepEqual(await t.store.claim([ev("leave|b0", "leave", 302)]), ["held"]);
  } finally {
    await t.close();
  }
});

Deno.test("redis tier: a confirmation never overwrites a value it did not see", async () => {
  const t = await setup();
  try {
    await t.store.claim([{ key: "join", at: 0 }]);
    // Meanwhile the claim expired and another delivery claimed the key.
    await t.redis.sendCommand(["SET", `${t.prefix}:join`, "p:other:7", "PX", "60000"]);
    await t.store.confirm([{ key: "join", at: 0 }]);
    assert.equal(await t.redis.sendCommand(["GET", `${t.prefix}:join`]), "p:other:7");
  } finally {
    await t.close();
  }
});

Deno.test("redis tier: release deletes only this instance's own claims", async () => {
  const t = await setup();
  try {
    await t.store.claim([{ key: "mine", at: 0 }]);
    await t.redis.sendCommand(["SET", `${t.prefix}:theirs`, "p:other:1", "PX", "60000"]);
    assert.deepEqual(await t.store.claim([{ key: "theirs", at: 0 }]), ["in-flight"]);
    await t.store.release(["mine", "theirs"]);
    assert.equal(await t.redis.sendCommand(["EXISTS", `${t.prefix}:mine`]), 0);
    assert.equal(await t.redis.sendCommand(["GET", `${t.prefix}:theirs`]), "p:other:1");
    assert.deepEqual(await t.store.claim([{ key: "mine", at: 0 }]), ["claimed"]);
  } finally {
    await t.close();
  }
});

Deno.test("redis tier: a release that failed can be retried", async () => {
  const t = await setup();
  try {
    await t.store.claim([{ key: "k", at: 0 }]);
    t.endpoint.faults.delayMs = 1_000;
    await assert.rejects(t.store.release(["k"]), ClaimStoreUnavailableError);
    t.endpoint.faults.delayMs = 0;
    await t.store.release(["k"]);
    assert.equal(await t.redis.sendCommand(["EXISTS", `${t.prefix}:k`]), 0);
  } finally {
    t.endpoint.faults.delayMs = 0;
    await t.close();
  }
});

Deno.test("redis tier: a slow endpoint is an error after the timeout, never 'held'", async () => {
  const t = await setup();
  try {
    await t.store.claim([{ key: "x", at: 0 }]);
    t.endpoint.faults.delayMs = 2_000;
    const started = Date.now();
    await assert.rejects(t.store.claim([{ key: "x", at: 0 }]), ClaimStoreUnavailableError);
    assert.ok(Date.now() - started < 1_500, "bounded by the timeout");
  } finally {
    t.endpoint.faults.delayMs = 0;
    await t.close();
  }
});

Deno.test("redis tier: an unreachable endpoint or a wrong token is an error, never 'held'", async () => {
  const down = new UpstashClaimStore({
    url: `http://127.0.0.1:${freePort()}`,
    token: TOKEN,
    ttlMs: 1000,
    timeoutMs: 300,
    keyPrefix: "t",
  });
  await assert.rejects(down.claim([{ key: "x", at: 0 }]), ClaimStoreUnavailableError);
  const t = await setup();
  try {
    const wrongToken = new UpstashClaimStore({
      url: t.endpoint.url,
      token: "wrong",
      ttlMs: 1000,
      timeoutMs: 300,
      keyPrefix: t.prefix,
    });
    await assert.rejects(
      wrongToken.claim([{ key: "x", at: 0 }]),
      (error: Error) => {
        assert.ok(error instanceof ClaimStoreUnavailableError);
        // Keys hold phone numbers: the error must not repeat the command.
        assert.ok(!String((error.cause as Error).message).includes(t.prefix));
        return true;
      },
    );
  } finally {
    await t.close();
  }
});
