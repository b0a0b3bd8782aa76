import assert from "node:assert/strict";
import { MemoryClaimStore } from "../supabase/functions/_shared/core/claims/memory_claim_store.ts";

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

Deno.test("memory tier: a copy within the burst is held, a new key is claimed", () => {
  const c = clock();
  const store = new MemoryClaimStore({ maxKeys: 10, ttlMs: 60_000, now: c.now });
  assert.equal(store.claimOne("a", 100), true);
  assert.equal(store.claimOne("a", 100), false);
  assert.equal(store.claimOne("a", 900), false);
  assert.equal(store.claimOne("b", 100), true);
});

Deno.test("memory tier: claims expire after the TTL", () => {
  const c = clock();
  const store = new MemoryClaimStore({ maxKeys: 10, ttlMs: 5_000, now: c.now });
  store.claimOne("a", 0);
  c.advance(4_999);
  assert.equal(store.claimOne("a", 0), false);
  c.advance(1);
  assert.equal(store.claimOne("a", 0), true);
});

Deno.test("memory tier: expired claims are dropped from the head as new ones arrive", () => {
  const c = clock();
  const store = new MemoryClaimStore({ maxKeys: 1_000, ttlMs: 1_000, now: c.now });
  for (let i = 0; i < 500; i++) store.claimOne(`old${i}`, 0);
  assert.equal(store.size, 500);
  c.advance(1_001);
  store.claimOne("new", 0);
  assert.equal(store.size, 1);
  assert.equal(store.has("new"), true);
});

Deno.test("memory tier: never grows past its bound; the oldest claims go first", () => {
  const c = clock();
  const store = new MemoryClaimStore({ maxKeys: 100, ttlMs: 3_600_000, now: c.now });
  for (let i = 0; i < 10_000; i++) {
    store.claimOne(`k${i}`, 0);
    assert.ok(store.size <= 100);
  }
  assert.equal(store.size, 100);
  assert.equal(store.has("k0"), false);
  assert.equal(store.has("k9999"), true);
  assert.equal(store.stats().evictions, 9_900);
});

Deno.test("memory tier: a re-claimed key moves to the tail of the expiry order", () => {
  const c = clock(0);
  const store = new MemoryClaimStore({ maxKeys: 10, ttlMs: 1_000, now: c.now });
  store.claimOne("a", 0); // expires at 1000
  c.advance(600);
  store.claimOne("b", 0); // expires at 1600
  c.advance(100);
  store.releaseSync(["a"]);
  store.claimOne("a", 0); // expires at 1700, behind b
  c.advance(950); // 1650
  store.claimOne("c", 0); // drops b from the head, stops at a
  assert.equal(store.has("b"), false);
  assert.equal(store.has("a"), true);
  assert.equal(store.size, 2);
});

Deno.test("memory tier: a later event with the same key is not taken for a copy", () => {
  // A rejoin whose leave went to another instance has the same key but a later event time.
  const c = clock();
  const store = new MemoryClaimStore({ maxKeys: 10, ttlMs: 60_000, burstMs: 1_000, now: c.now });
  assert.equal(store.claimOne("join|g|p|1", 10_000), true);
  assert.equal(store.claimOne("join|g|p|1", 10_999), false);
  assert.equal(store.claimOne("join|g|p|1", 12_000), true);
});

Deno.test("memory tier: release lets the next delivery claim again", async () => {
  const store = new MemoryClaimStore({ maxKeys: 10, ttlMs: 60_000 });
  assert.deepEqual(await store.claim([{ key: "a", at: 0 }, { key: "a", at: 0 }]), [
    "claimed",
    "held",
  ]);
  await store.release(["a"]);
  assert.deepEqual(await store.claim([{ key: "a", at: 0 }]), ["claimed"]);
});
