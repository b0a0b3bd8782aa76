/**
 * The benchmark's `--quick` size, run in CI for correctness only (never timings): our handler
 * leaks no duplicate and loses no event, with and without Redis and under every fault, while the
 * no-dedup baselines do leak duplicates on the same workloads (memberships and messages); and a
 * 5 s chaos run (all three functions under load while the nemesis injects faults) loses, doubles
 * and leaves stuck nothing.
 */
import assert from "node:assert/strict";
import { runBenchmark } from "../bench/run.ts";
import { isOurs } from "../bench/lib/targets.ts";

Deno.test({
  name: "bench --quick: ours leaks 0 and loses 0 (both webhooks); the quick fixes leak",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const lines: string[] = [];
    const result = await runBenchmark({ quick: true, chaos: 5, log: (line) => lines.push(line) });
    const row = (id: string) => {
      const found = result.rows.find((r) => r.id === id);
      assert.ok(found, `row ${id} missing`);
      return found;
    };
    const summary = result.rows.map((r) => `${r.id}: leaked ${r.leaked}, lost ${r.lost}`)
      .join("\n");
    assert.ok(row("noDedup").leaked > 0, summary);
    assert.ok(row("msg:checkThenInsert").leaked > 0, summary);
    const ours = result.rows.filter(isOurs);
    assert.equal(ours.length, 13, summary);
    for (const r of ours) {
      assert.equal(r.leaked, 0, `${r.id} leaked\n${summary}\n${lines.join("\n")}`);
      assert.equal(r.lost, 0, `${r.id} lost events\n${summary}\n${lines.join("\n")}`);
      assert.equal(r.gaveUp, 0, `${r.id}: the sender gave up on deliveries\n${summary}`);
    }
    const chaos = result.chaos;
    assert.ok(chaos, "chaos run missing");
    assert.ok(Object.values(chaos.faults).some((n) => n > 0), "the nemesis injected nothing");
    assert.equal(chaos.realtimeError, undefined);
    for (const f of chaos.functions) {
      const what = `chaos ${f.function}: ${JSON.stringify(f)}\n${lines.join("\n")}`;
      assert.ok(f.deliveries > 0, what);
      assert.deepEqual([f.lost, f.doubled, f.stuck], [0, 0, 0], what);
    }
  },
});
