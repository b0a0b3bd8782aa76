/**
 * The send benchmark's `--quick` size, for correctness only (never timings): no double sends and
 * no skipped recipients, including the kill-and-resume fault; and one small scale row.
 */
import assert from "node:assert/strict";
import { PLATFORM_MEMORY_LIMIT_MIB, runSendBatchBench } from "../bench/send_batch_bench.ts";
import { databaseUrl } from "./support/env.ts";

Deno.test({
  name: "send bench --quick: 0 double sends, 0 skipped in every row",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const rows = await runSendBatchBench({
      quick: true,
      databaseUrl: databaseUrl(),
      log: () => {},
    });
    assert.deepEqual(rows.map((r) => r.id), [
      "send:high-rate",
      "send:80-per-second",
      "send:upstash-down",
      "send:upstash-down-per-instance",
      "send:kill-resume",
    ]);
    for (const row of rows) {
      assert.equal(row.doubleSends, 0, row.id);
      assert.equal(row.skipped, 0, row.id);
    }
    assert.equal(rows.slice(0, 4).reduce((n, r) => n + r.unknown, 0), 0);
  },
});

Deno.test({
  name:
    "send bench scale rows alone (small size): 0 double, 0 skipped, the isolate's memory sampled",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const rows = await runSendBatchBench({
      onlyScale: true,
      scale: [300],
      databaseUrl: databaseUrl(),
      log: () => {},
    });
    assert.deepEqual(rows.map((r) => [r.id, r.recipients]), [["send:scale-1k", 300]]);
    const [row] = rows;
    assert.equal(row.doubleSends, 0);
    assert.equal(row.skipped, 0);
    // Sampled from the instance processes (V8 used heap + external), under the heap cap.
    const isolate = row.scale?.peakIsolateBytes ?? 0;
    assert.ok(isolate > 0 && isolate < PLATFORM_MEMORY_LIMIT_MIB * 2 ** 20, String(isolate));
    assert.ok(row.scale!.peakRssBytes > isolate);
  },
});
