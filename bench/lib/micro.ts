/**
 * The `Deno.bench` micro-benchmarks (`bench/*_bench.ts`), run as a child process with `--json`.
 */
import type { MicroFigure } from "./result.ts";

/** Runs the micro-benchmarks and returns their means. */
export async function microBenchmarks(log: (line: string) => void): Promise<MicroFigure[]> {
  log("micro-benchmarks (deno bench)…");
  const dir = new URL("../", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bench", "-A", "--json", `${dir}map_tier_bench.ts`, `${dir}normalize_bench.ts`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const json = JSON.parse(text.slice(text.indexOf("{"))) as {
    benches: {
      name: string;
      group: string;
      results: { ok?: { avg: number; p99: number; n: number } }[];
    }[];
  };
  return json.benches.flatMap((b) => {
    const ok = b.results[0]?.ok;
    return ok
      ? [{ name: b.name, group: b.group, avgNs: ok.avg, p99Ns: ok.p99, iterations: ok.n }]
      : [];
  });
}
