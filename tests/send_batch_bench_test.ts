/**
 * The send benchmark's `--quick` size, for correctness only (never timings): no double sends and
 * no skipped recipients, including the kill-and-resume fault.
 */
import assert from "node:assert/strict";
import { runSendBatchBench } from "../bench/send_batch_bench.ts";
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
