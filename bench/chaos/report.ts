/**
 * The chaos run as a table and a target: the terminal report, the bench README's markdown, the
 * target check (0 lost / 0 doubled / 0 stuck for every function) and the exit status.
 */
import { markdownTable, textTable } from "../lib/report.ts";
import type { TargetCheck } from "../lib/result.ts";
import type { ChaosResult } from "./scenarios.ts";

const HEAD = ["function", "deliveries", "lost", "doubled", "stuck", "retried", "given up"];

function cells(chaos: ChaosResult): string[][] {
  return chaos.functions.map((f) => [
    f.function,
    String(f.deliveries),
    String(f.lost),
    String(f.doubled),
    String(f.stuck),
    String(f.retried),
    String(f.gaveUp),
  ]);
}

const describe = (chaos: ChaosResult) =>
  `${chaos.seconds} s, seed ${chaos.seed}, ${chaos.instances} instances; faults: ${
    Object.entries(chaos.faults).map(([f, n]) => `${f} ×${n}`).join(", ")
  }; instances that exited on their own: ${chaos.instanceCrashes}`;

/** Terminal lines of the chaos run (none when not run). */
export function chaosLines(chaos: ChaosResult | undefined): string[] {
  if (!chaos) return [];
  return ["", `Chaos run (${describe(chaos)}):`, textTable(HEAD, cells(chaos))];
}

/** The markdown of the chaos run (none when not run). */
export function chaosMarkdown(chaos: ChaosResult | undefined): string[] {
  if (!chaos) return [];
  return [
    "",
    `Chaos run (${describe(chaos)}; deliveries = webhook deliveries sent, retries not counted, ` +
    "or send-batch recipients; retried = attempts answered 5xx or not at all):",
    "",
    markdownTable(HEAD, cells(chaos)),
  ];
}

/** The chaos target (none when not run). */
export function chaosTargets(chaos: ChaosResult | undefined): TargetCheck[] {
  if (!chaos) return [];
  return [{
    target: "chaos run: 0 lost, 0 doubled, 0 stuck for every function",
    measured: chaos.functions.map((f) => `${f.function} ${f.lost}/${f.doubled}/${f.stuck}`)
      .join("; ") + (chaos.realtimeError ? `; Realtime: ${chaos.realtimeError}` : ""),
    met: !chaos.realtimeError &&
      chaos.functions.every((f) => f.lost === 0 && f.doubled === 0 && f.stuck === 0),
  }];
}

/** The chaos run as rows for the exit status: doubled counts as leaked, stuck as lost. */
export function chaosRows(
  chaos: ChaosResult | undefined,
): { id: string; leaked: number; lost: number }[] {
  return (chaos?.functions ?? []).map((f) => ({
    id: `ours:chaos:${f.function}`,
    leaked: f.doubled + (chaos?.realtimeError ? 1 : 0),
    lost: f.lost + f.stuck,
  }));
}
