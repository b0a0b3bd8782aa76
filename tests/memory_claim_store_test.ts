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

Deno.test("memory tier: a rejoin is never a copy of the join before the leave (subjects)", () => {
  const store = new MemoryClaimStore({ maxKeys: 10, ttlMs: 60_000, burstMs: 1_000 });
  const subject = "g|+15550001";
  assert.equal(store.claimOne("join|b0", 100, subject, "join"), true);
  assert.equal(store.claimOne("join|b0", 100, subject, "join"), false, "copy");
  assert.equal(store.claimOne("leave|b0", 300, subject, "leave"), true);
  assert.equal(store.claimOne("join|b0", 500, subject, "join"), true, "rejoin after the leave");
  assert.equal(store.claimOne("join|b0", 500, subject, "join"), false, "copy of the rejoin");
  assert.equal(store.claimOne("leave|b0", 300, subject, "leave"), false, "late copy of the leave");
});

Deno.test("memory tier: for a subject, another event time goes on to the shared tier", () => {
  // Join on this instance, a leave only on another one, a rejoin 600 ms later here: this
  // instance cannot tell it from a copy stamped by another clock, so it does not decide
  // (issue 16, item 4: no false duplicates). A copy with the held time is still answered here.
  const store = new MemoryClaimStore({ maxKeys: 10, ttlMs: 60_000, burstMs: 1_000 });
  const subject = "g|+15550001";
  assert.equal(store.claimOne("join|b0", 100, subject, "join"), true);
  assert.equal(store.claimOne("join|b0", 700, subject, "join"), true, "rejoin or copy: go on");
  assert.equal(store.claimOne("join|b0", 700, subject, "join"), false, "copy of the same time");
});

Deno.test("memory tier: a subject forgotten at the bound never makes a held claim a copy", () => {
  const store = new MemoryClaimStore({ maxKeys: 2, ttlMs: 60_000, burstMs: 1_000 });
  assert.equal(store.claimOne("join|x1", 100, "x", "join"), true);
  assert.equal(store.claimOne("join|y", 100, "y", "join"), true);
  assert.equal(store.claimOne("join|x2", 100, "x", "join"), true); // evicts the claim join|x1
  assert.equal(store.claimOne("join|z", 100, "z", "join"), true); // evicts join|y and subject x
  assert.equal(store.has("join|x2"), true);
  // The claim is still held but what happened to x since is unknown: not a copy.
  assert.equal(store.claimOne("join|x2", 101, "x", "join"), true);
  assert.equal(store.claimOne("join|x2", 101, "x", "join"), false, "known again from here on");
});
