/**
 * The local runner's function instances and the platform's limits, with the small functions of
 * tests/fixtures/edge/: each function runs in instances of its own (fresh module state), a
 * request is handed over untouched, the wall clock cuts an instance's requests and its
 * `waitUntil` work, an instance past half its clock takes no new request, eviction after each
 * response starts a fresh instance without cutting any work, and a failing function never takes
 * the runner down.
 */
import assert from "node:assert/strict";
import type { EdgeLimits } from "../scripts/lib/edge_limits.ts";
import { edgeLimitsFromEnv } from "../scripts/lib/edge_limits.ts";
import { type FunctionsServer, serveFunctions } from "../scripts/serve_functions.ts";

const FIXTURES = new URL("./fixtures/edge/functions/", import.meta.url);
const opts = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function withRunner(
  limits: EdgeLimits,
  body: (url: (path: string) => string, server: FunctionsServer) => Promise<void>,
): Promise<void> {
  const server = await serveFunctions({
    port: 0,
    quiet: true,
    functionsDir: FIXTURES,
    limits,
    drainTimeoutMs: 10_000,
  });
  try {
    await body((path) => `http://127.0.0.1:${server.addr.port}/functions/v1/${path}`, server);
  } finally {
    await server.shutdown();
    delete (globalThis as { EdgeRuntime?: unknown }).EdgeRuntime;
  }
}

async function json(url: string, init?: RequestInit) {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.json() };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("limits: EDGE_WALL_CLOCK_MS (default 150 s) and EDGE_EVICT_AFTER_RESPONSE", () => {
  assert.deepEqual(edgeLimitsFromEnv({}), { wallClockMs: 150_000, evictAfterResponse: false });
  assert.deepEqual(
    edgeLimitsFromEnv({ EDGE_WALL_CLOCK_MS: "2000", EDGE_EVICT_AFTER_RESPONSE: "1" }),
    {
      wallClockMs: 2000,
      evictAfterResponse: true,
    },
  );
  assert.equal(edgeLimitsFromEnv({ EDGE_WALL_CLOCK_MS: "0" }).wallClockMs, 0);
  assert.throws(() => edgeLimitsFromEnv({ EDGE_WALL_CLOCK_MS: "soon" }), /EDGE_WALL_CLOCK_MS/);
});

Deno.test(
  "instances: the function gets method, URL, headers, body bytes and address as sent",
  opts,
  async () => {
    await withRunner({ wallClockMs: 60_000, evictAfterResponse: false }, async (url) => {
      const body = new Uint8Array([0, 1, 2, 250, 255, 10, 13]);
      const target = url("echo/sub/path?format=waha&x=%20y");
      const r = await json(target, {
        method: "PUT",
        headers: {
          "x-webhook-signature": "sha256=abc",
          "content-type": "application/octet-stream",
        },
        body,
      });
      assert.equal(r.status, 200);
      assert.equal(r.body.method, "PUT");
      assert.equal(r.body.url, target);
      const headers = new Headers(r.body.headers);
      assert.equal(headers.get("x-webhook-signature"), "sha256=abc");
      assert.equal(headers.get("content-length"), String(body.byteLength));
      assert.deepEqual(r.body.body, [...body]);
      assert.equal(r.body.remoteAddr.hostname, "127.0.0.1");
      // One instance serves request after request while its clock runs.
      const again = await json(url("echo"));
      assert.equal(again.body.instance, r.body.instance);
      assert.equal(again.body.served, 2);
    });
  },
);

Deno.test(
  "wall clock: at the limit a request still running gets 546 and waitUntil work stops",
  opts,
  async () => {
    await withRunner({ wallClockMs: 1_000, evictAfterResponse: false }, async (url, server) => {
      const marker = await Deno.makeTempFile();
      await Deno.remove(marker);
      const started = Date.now();
      // Answered at once; its waitUntil work would write the marker 3 s later.
      const quick = await json(url(`work?after=3000&marker=${marker}`));
      assert.equal(quick.status, 200);
      // Still running when the instance's clock ends.
      const slow = await fetch(url("work?ms=5000"));
      const elapsed = Date.now() - started;
      assert.equal(slow.status, 546);
      assert.equal((await slow.json()).code, "WORKER_LIMIT");
      assert.ok(elapsed >= 900 && elapsed < 3_000, `cut after ${elapsed} ms`);
      await sleep(3_500 - (Date.now() - started));
      assert.equal(await exists(marker), false, "the cut waitUntil work never finished");
      const pool = server.pools.find((p) => p.name === "work")!;
      assert.equal(pool.stats.ended["wall-clock"], 1);
      // The next request starts a fresh instance.
      const next = await json(url("work"));
      assert.equal(next.status, 200);
      assert.notEqual(next.body.instance, quick.body.instance);
    });
  },
);

Deno.test(
  "wall clock: past half of it new requests go to a fresh instance, the old one finishes",
  opts,
  async () => {
    await withRunner({ wallClockMs: 2_000, evictAfterResponse: false }, async (url, server) => {
      const first = await json(url("echo"));
      // A request the first instance holds across its half-time.
      const held = fetch(url("work?ms=1400"));
      await sleep(1_200);
      const second = await json(url("echo"));
      assert.notEqual(second.body.instance, first.body.instance, "a retired instance takes none");
      assert.equal(second.body.served, 1);
      const heldResponse = await held;
      assert.equal(heldResponse.status, 200, "the retired instance still answered its request");
      await heldResponse.body?.cancel();
      const pool = server.pools.find((p) => p.name === "echo")!;
      assert.equal(pool.stats.started, 2);
    });
  },
);

Deno.test(
  "eviction: a fresh instance after each response, and no waitUntil work is cut",
  opts,
  async () => {
    await withRunner({ wallClockMs: 60_000, evictAfterResponse: true }, async (url, server) => {
      const ids = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const r = await json(url("echo"));
        assert.equal(r.body.served, 1, "each request meets a fresh module");
        ids.add(r.body.instance);
      }
      assert.equal(ids.size, 4);
      const marker = await Deno.makeTempFile();
      await Deno.remove(marker);
      const r = await json(url(`work?after=500&marker=${marker}`));
      assert.equal(r.status, 200);
      const pool = server.pools.find((p) => p.name === "work")!;
      assert.equal(pool.stats.live, 1, "kept while its waitUntil work runs");
      for (let i = 0; i < 100 && !(await exists(marker)); i++) await sleep(20);
      assert.equal(await Deno.readTextFile(marker), r.body.instance, "the work ran to its end");
      for (let i = 0; i < 100 && pool.stats.live > 0; i++) await sleep(20);
      assert.deepEqual(pool.stats, { started: 1, live: 0, ended: { idle: 1 } });
      await Deno.remove(marker);
    });
  },
);

Deno.test(
  "failures: a throwing function gets 500, a crashing instance ends alone",
  opts,
  async () => {
    await withRunner({ wallClockMs: 60_000, evictAfterResponse: false }, async (url, server) => {
      const thrown = await fetch(url("fail?how=throw"));
      assert.equal(thrown.status, 500);
      await thrown.body?.cancel();
      const crashed = await json(url("fail?how=crash"));
      assert.equal(crashed.status, 200);
      const pool = server.pools.find((p) => p.name === "fail")!;
      for (let i = 0; i < 100 && !pool.stats.ended.crashed; i++) await sleep(20);
      assert.equal(pool.stats.ended.crashed, 1);
      const after = await json(url("fail"));
      assert.equal(after.status, 200);
      assert.notEqual(after.body.instance, crashed.body.instance);
      // Other functions never noticed.
      assert.equal((await json(url("echo"))).status, 200);
    });
  },
);

Deno.test("shutdown: waits for an instance's waitUntil work, then ends it", opts, async () => {
  const marker = await Deno.makeTempFile();
  await Deno.remove(marker);
  let server: FunctionsServer | undefined;
  await withRunner({ wallClockMs: 60_000, evictAfterResponse: false }, async (url, s) => {
    server = s;
    assert.equal((await json(url(`work?after=400&marker=${marker}`))).status, 200);
  });
  assert.ok(await exists(marker), "shutdown resolved after the work");
  assert.equal(server!.pools.find((p) => p.name === "work")!.stats.live, 0);
  await Deno.remove(marker);
});
