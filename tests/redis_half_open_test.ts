/**
 * The Redis tier comes back at once: after an Upstash failure the claim store and the
 * Idempotency-Key response cache skip Redis only until a probe interval has passed; the first
 * request after it uses Redis again, and a success closes the circuit. Checked against the real
 * Upstash-compatible endpoint, stopped and started again on its port, with a hand-moved clock and
 * Redis state or endpoint requests (never timings) as the evidence.
 */
import assert from "node:assert/strict";
import { createClient } from "@redis/client";
import {
  startUpstashRestServer,
  type UpstashRestServer,
} from "../scripts/lib/upstash_rest_server.ts";
import { HalfOpenCircuit } from "../supabase/functions/_shared/core/circuit.ts";
import { MemoryClaimStore } from "../supabase/functions/_shared/core/claims/memory_claim_store.ts";
import { UpstashClaimStore } from "../supabase/functions/_shared/core/claims/upstash_claim_store.ts";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import { ExactlyOnceProcessor } from "../supabase/functions/_shared/core/exactly_once.ts";
import { IdempotencyLayer } from "../supabase/functions/_shared/core/idempotency/layer.ts";
import type { IdempotencyStore } from "../supabase/functions/_shared/core/idempotency/store.ts";
import { UpstashResponseCache } from "../supabase/functions/_shared/core/idempotency/upstash_cache.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { redisUrl } from "./support/env.ts";

const TOKEN = "half-open-token";
const opts = { sanitizeResources: false, sanitizeOps: false };

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

/** The endpoint on a fixed port, so that it can be stopped and started again at the same URL. */
async function restartableEndpoint() {
  const port = freePort();
  let endpoint: UpstashRestServer | undefined = await startUpstashRestServer({
    redisUrl: redisUrl(),
    token: TOKEN,
    port,
  });
  return {
    url: endpoint.url,
    get requests() {
      return endpoint?.stats.requests ?? 0;
    },
    async stop() {
      await endpoint?.close();
      endpoint = undefined;
    },
    async start() {
      endpoint = await startUpstashRestServer({ redisUrl: redisUrl(), token: TOKEN, port });
    },
  };
}

Deno.test("circuit: closed; a failure opens it; one probe per interval; success closes it", () => {
  const clock = manualClock();
  const circuit = new HalfOpenCircuit(250, clock.now);
  assert.ok(circuit.allow() && circuit.allow(), "closed: every request");
  circuit.failed();
  assert.equal(circuit.open, true);
  assert.equal(circuit.nextProbeAt, clock.now() + 250);
  clock.advance(249);
  assert.equal(circuit.allow(), false);
  clock.advance(1);
  assert.equal(circuit.allow(), true, "the first request after the interval probes");
  assert.equal(circuit.allow(), false, "one probe at a time");
  circuit.failed();
  clock.advance(250);
  assert.equal(circuit.allow(), true, "re-opened, probed again an interval later");
  circuit.succeeded();
  assert.equal(circuit.open, false);
  assert.equal(circuit.nextProbeAt, undefined);
  assert.ok(circuit.allow() && circuit.allow());
  const every = new HalfOpenCircuit(0, clock.now);
  every.failed();
  assert.ok(every.allow() && every.allow(), "0: every request tries");
});

Deno.test("config: REDIS_PROBE_INTERVAL_MS defaults to 250; REDIS_COOLDOWN_MS is its older name", () => {
  const base = {
    SUPABASE_DB_URL: "postgres://unused",
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1",
    UPSTASH_REDIS_REST_TOKEN: "t",
  };
  assert.equal(parseConfig(base).redis?.probeIntervalMs, 250);
  assert.equal(
    parseConfig({ ...base, REDIS_PROBE_INTERVAL_MS: "100" }).redis?.probeIntervalMs,
    100,
  );
  assert.equal(parseConfig({ ...base, REDIS_COOLDOWN_MS: "0" }).redis?.probeIntervalMs, 0);
});

Deno.test(
  "claim store: Upstash stopped then restarted; the first webhook after the probe interval claims in Redis",
  opts,
  async () => {
    const endpoint = await restartableEndpoint();
    const redis = createClient({ url: redisUrl(), RESP: 2 });
    await redis.connect();
    const clock = manualClock();
    const prefix = `ho${crypto.randomUUID().slice(0, 8)}`;
    const applied: string[] = [];
    const config = parseConfig({
      SUPABASE_DB_URL: "postgres://unused",
      UPSTASH_REDIS_REST_URL: endpoint.url,
      UPSTASH_REDIS_REST_TOKEN: TOKEN,
    });
    const processor = new ExactlyOnceProcessor<string>({
      memory: new MemoryClaimStore({ maxKeys: 100, ttlMs: 60_000 }),
      shared: new UpstashClaimStore({
        url: endpoint.url,
        token: TOKEN,
        ttlMs: 60_000,
        timeoutMs: 300,
        keyPrefix: prefix,
      }),
      repository: {
        name: "fake",
        apply: (events) => {
          applied.push(...events);
          return Promise.resolve(
            events.map(() => ({ outcome: "applied" as const, referenceAt: 0 })),
          );
        },
        close: () => Promise.resolve(),
      },
      claimOf: (key) => ({ key, at: 0 }),
      sharedProbeIntervalMs: config.redis!.probeIntervalMs,
      logger: silentLogger,
      now: clock.now,
    });
    const inRedis = async (key: string) =>
      Number(await redis.sendCommand(["EXISTS", `${prefix}:${key}`])) === 1;
    try {
      await processor.process(["before"]);
      assert.ok(await inRedis("before"), "claimed in Redis while it is up");

      await endpoint.stop();
      await processor.process(["during"]);
      assert.equal(processor.sharedHealth().state, "degraded");
      await endpoint.start();

      clock.advance(100);
      await processor.process(["too-soon"]);
      assert.equal(await inRedis("too-soon"), false, "within the probe interval Redis is skipped");
      assert.equal(endpoint.requests, 0);

      clock.advance(150);
      await processor.process(["first-after"]);
      assert.ok(await inRedis("first-after"), "the first request after the interval uses Redis");
      assert.equal(processor.sharedHealth().state, "ok");
      assert.equal(processor.sharedHealth().skippedUntil, undefined);
      await processor.process(["next"]);
      assert.ok(await inRedis("next"), "and so does every one after it: closed");
      assert.deepEqual(applied, ["before", "during", "too-soon", "first-after", "next"]);

      // A probe that fails opens the circuit for another interval.
      await endpoint.stop();
      await processor.process(["down-again"]);
      clock.advance(250);
      await processor.process(["failed-probe"]);
      await endpoint.start();
      clock.advance(100);
      await processor.process(["after-failed-probe"]);
      assert.equal(await inRedis("after-failed-probe"), false);
      clock.advance(150);
      await processor.process(["back"]);
      assert.ok(await inRedis("back"));
    } finally {
      await processor.close();
      redis.destroy();
      await endpoint.stop();
    }
  },
);

/** An idempotency store that starts every key and keeps nothing (the database's part is elsewhere). */
function startingStore(): IdempotencyStore {
  return {
    name: "fake",
    begin: () => Promise.resolve({ kind: "started", token: crypto.randomUUID() }),
    complete: () => Promise.resolve(true),
    release: () => Promise.resolve(true),
    countReplays: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

Deno.test(
  "response cache: Upstash stopped then restarted; the first keyed request after the probe interval uses Redis",
  opts,
  async () => {
    const endpoint = await restartableEndpoint();
    // Cached responses expire by the wall clock: the hand-moved clock starts at the real time.
    const clock = manualClock(Date.now());
    const layer = new IdempotencyLayer({
      config: { enabled: true, ttlSeconds: 60, leaseSeconds: 5, memoryMaxKeys: 0, timeoutMs: 1000 },
      store: startingStore(),
      shared: new UpstashResponseCache({
        url: endpoint.url,
        token: TOKEN,
        timeoutMs: 300,
        keyPrefix: `ho${crypto.randomUUID().slice(0, 8)}`,
      }),
      logger: silentLogger,
      now: clock.now,
    });
    const keyed = async (key: string) => {
      const response = await layer.handle(
        {
          functionName: "test",
          caller: "test",
          webhookType: "test",
          request: new Request("http://localhost/test", {
            method: "POST",
            headers: { "idempotency-key": key },
          }),
          rawBody: new Uint8Array(),
        },
        () => Promise.resolve(Response.json({ ok: true })),
      );
      await response.body?.cancel();
      assert.equal(response.status, 200);
    };
    const shared = () => (layer.describe().shared as { state: string }).state;
    try {
      await keyed("k1");
      assert.equal(endpoint.requests, 2, "looked up and stored in Redis");
      await endpoint.stop();
      await keyed("k2");
      assert.equal(shared(), "degraded");
      await endpoint.start();

      clock.advance(100);
      await keyed("k3");
      assert.equal(endpoint.requests, 0, "within the probe interval Redis is skipped");
      clock.advance(150);
      await keyed("k4");
      assert.equal(endpoint.requests, 2, "the first request after the interval: lookup and store");
      assert.equal(shared(), "ok");
      await keyed("k5");
      assert.equal(endpoint.requests, 4);
    } finally {
      await layer.close();
      await endpoint.stop();
    }
  },
);
