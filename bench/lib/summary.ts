/**
 * A run's summary: the machine it ran on, the terminal report and the markdown of the "Latest
 * results" section of bench/README.md.
 */
import type { LoadFigure } from "./load.ts";
import { markdownTable, mib, tableCells, textTable } from "./report.ts";
import type { BenchResult } from "./result.ts";
import { topologyLines, topologyMarkdown } from "../topology/report.ts";
import { chaosLines, chaosMarkdown } from "../chaos/report.ts";

/** CPU, memory, OS and Deno version of this machine. */
export async function machine(): Promise<BenchResult["machine"]> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const kb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
  return {
    cpus: navigator.hardwareConcurrency,
    memoryGiB: Math.round((kb / 2 ** 20) * 10) / 10,
    cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
  };
}

/** The terminal report of a result. */
export function formatReport(result: BenchResult): string {
  const { head, body } = tableCells(result.rows);
  const lines = [textTable(head, body), ""];
  lines.push("Per-webhook cost (one delivery at a time, ours with Redis):");
  for (const p of result.costProbe) {
    lines.push(
      `  ${p.case.padEnd(30)} ${p.dbRoundTrips} database round trip(s), ` +
        `${p.redisBatches} Redis batch(es) / ${p.redisCommands} command(s)`,
    );
  }
  if (result.micro.length > 0) {
    lines.push("", "Micro-benchmarks (deno bench, mean):");
    for (const m of result.micro) {
      lines.push(`  ${m.name.padEnd(42)} ${m.avgNs.toFixed(0).padStart(10)} ns/op`);
    }
  }
  if (result.http) {
    const h = result.http;
    const f = (name: string, l?: LoadFigure) =>
      l
        ? `  ${name.padEnd(34)} ${l.requestsPerS.toFixed(0).padStart(8)} req/s  p99 ${
          l.p99Ms.toFixed(1)
        } ms  non-2xx ${l.non2xx}${l.cycled ? "  (bodies cycled)" : ""}`
        : `  ${name.padEnd(34)} not measured`;
    lines.push("", `HTTP load (${h.bare.tool}, ${h.bare.connections} connections, one instance):`);
    lines.push(f("bare Deno.serve (ceiling)", h.bare));
    lines.push(f("bare + raw bytes + HMAC (ceiling)", h.bareHmac));
    lines.push(f("ours, duplicate path", h.duplicatePath));
    lines.push(f("ours, message duplicate path", h.messageDuplicatePath));
    lines.push(
      f(
        "ours, unique path (no Redis)",
        h.uniquePath !== h.duplicatePath ? h.uniquePath : undefined,
      ),
    );
    lines.push(f("ours, unique path (with Redis)", h.uniquePathWithRedis));
    for (const p of h.pgbench) {
      lines.push(
        `  pgbench apply, ${p.clients} client(s)`.padEnd(36) +
          `${p.tps.toFixed(0).padStart(8)} tx/s`,
      );
    }
    if (h.note) lines.push(`  note: ${h.note}`);
  }
  if (result.sendBatch) {
    lines.push("", "whatsapp-send-batch (fake provider):");
    for (const r of result.sendBatch) lines.push(`  ${sendLine(r)}`);
  }
  if (result.idempotency) {
    lines.push("", "Idempotency-Key:");
    for (const r of result.idempotency) {
      lines.push(
        `  ${r.name.padEnd(52)} ${String(r.value).padStart(10)} ${r.unit}${
          r.note ? `  (${r.note})` : ""
        }`,
      );
    }
  }
  lines.push(...topologyLines(result.topology, result.options.topologies));
  lines.push(...chaosLines(result.chaos));
  lines.push("", "Targets:");
  for (const t of result.targets) {
    const mark = t.met === null ? "n/a   " : t.met ? "MET   " : "MISSED";
    lines.push(`  [${mark}] ${t.target}: ${t.measured}`);
  }
  lines.push(
    "",
    `${result.machine.cpus} CPUs (${result.machine.cpuModel}), ${result.machine.memoryGiB} GiB, ` +
      `Deno ${result.machine.deno}, ${result.date}, ${result.elapsedS.toFixed(0)} s`,
  );
  return lines.join("\n");
}

/** The markdown of the "Latest results" section. */
export function formatMarkdown(result: BenchResult): string {
  const { head, body } = tableCells(result.rows);
  const m = result.machine;
  const out = [
    `Run on ${result.date.slice(0, 10)}: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB RAM, ` +
    `${m.os}, Deno ${m.deno}; M = ${result.options.events} events, ${result.options.sessions} ` +
    `sessions, ${result.options.instances} instances; ${result.elapsedS.toFixed(0)} s in all.`,
    "",
    markdownTable(head, body),
    "",
    "![Leaked duplicates, lost events and throughput per strategy](results/latest.svg)",
    "",
    "Per-webhook cost, one delivery at a time (ours with Redis):",
    "",
    markdownTable(
      ["case", "DB round trips", "Redis batches", "Redis commands"],
      result.costProbe.map((p) => [
        p.case,
        String(p.dbRoundTrips),
        String(p.redisBatches),
        String(p.redisCommands),
      ]),
    ),
  ];
  if (result.micro.length > 0) {
    out.push(
      "",
      "Micro-benchmarks (`deno bench`, mean per operation):",
      "",
      markdownTable(
        ["benchmark", "ns/op"],
        result.micro.map((x) => [x.name, x.avgNs.toFixed(0)]),
      ),
    );
  }
  if (result.http) {
    const h = result.http;
    const rows: string[][] = [
      ["bare `Deno.serve` parsing the same JSON (ceiling)", h.bare],
      [
        "bare `Deno.serve` reading the raw bytes, verifying the HMAC, parsing (ceiling)",
        h.bareHmac,
      ],
      ["ours, signed duplicate deliveries", h.duplicatePath],
      ["ours, message webhook, signed duplicate deliveries", h.messageDuplicatePath],
      [
        "ours, signed unique deliveries, no Redis",
        h.uniquePath !== h.duplicatePath ? h.uniquePath : undefined,
      ],
      ["ours, signed unique deliveries, with Redis", h.uniquePathWithRedis],
    ].map(([name, l]) => {
      const f = l as LoadFigure | undefined;
      return [
        name as string,
        f ? f.requestsPerS.toFixed(0) : "–",
        f ? f.p99Ms.toFixed(1) : "–",
        f ? String(f.non2xx) : "–",
      ];
    });
    for (const p of h.pgbench) {
      rows.push([`pgbench, apply function, ${p.clients} client(s)`, p.tps.toFixed(0), "–", "–"]);
    }
    out.push(
      "",
      `HTTP load on one instance (${h.bare.tool}, ${h.bare.connections} connections, ${h.bare.durationS} s each; instance DB pool = ${h.instancePoolSize}):`,
      "",
      markdownTable(["load", "req/s (tx/s)", "p99 ms", "non-2xx"], rows),
    );
  }
  if (result.sendBatch) {
    out.push(
      "",
      "whatsapp-send-batch against the fake provider:",
      "",
      markdownTable(
        [
          "row",
          "recipients",
          "recipients/s",
          "DB round trips/recipient",
          "share of 80/s",
          "busiest second",
          "double sends",
          "skipped",
          "unknown",
        ],
        result.sendBatch.map((r) => [
          r.id,
          String(r.recipients),
          r.recipientsPerSecond.toFixed(1),
          r.dbRoundTripsPerRecipient?.toFixed(2) ?? "–",
          r.shareOfLimit === undefined ? "–" : `${(r.shareOfLimit * 100).toFixed(1)}%`,
          r.busiestSecondShare === undefined
            ? "–"
            : `${(r.busiestSecondShare * 100).toFixed(1)}% (${r.instances} instances)`,
          String(r.doubleSends),
          String(r.skipped),
          String(r.unknown),
        ]),
      ),
    );
    const scale = result.sendBatch.filter((r) => r.scale);
    if (scale.length > 0) {
      out.push(
        "",
        "whatsapp-send-batch at scale (one batch created and sent by an instance process, killed " +
          "halfway, resumed by a second one; round trips per claimed recipient):",
        "",
        markdownTable(
          [
            "row",
            "recipients",
            "create µs/recipient",
            "DB round trips/claimed recipient",
            "progress GET ms (round trips)",
            "peak RSS MiB (idle)",
            "peak isolate MiB",
            "double sends",
            "skipped",
            "unknown",
          ],
          scale.map((r) => [
            r.id,
            String(r.recipients),
            (r.scale!.createMsPerRecipient * 1000).toFixed(1),
            r.dbRoundTripsPerRecipient?.toFixed(2) ?? "–",
            `${r.scale!.progressMs.toFixed(1)} (${r.scale!.progressRoundTrips})`,
            `${mib(r.scale!.peakRssBytes)} (${mib(r.scale!.idleRssBytes)})`,
            mib(r.scale!.peakIsolateBytes),
            String(r.doubleSends),
            String(r.skipped),
            String(r.unknown),
          ]),
        ),
      );
    }
  }
  if (result.idempotency) {
    out.push(
      "",
      "Idempotency-Key replays and retention:",
      "",
      markdownTable(
        ["figure", "value", "unit", "note"],
        result.idempotency.map((r) => [r.name, String(r.value), r.unit, r.note ?? ""]),
      ),
    );
  }
  out.push(...topologyMarkdown(result.topology, result.options.topologies));
  out.push(...chaosMarkdown(result.chaos));
  out.push(
    "",
    "Targets:",
    "",
    markdownTable(
      ["target", "measured", "status"],
      result.targets.map((t) => [
        t.target,
        t.measured,
        t.met === null ? "not run" : t.met ? "met" : "**missed**",
      ]),
    ),
  );
  return out.join("\n");
}

/** One send-batch row as a line of the terminal report. */
function sendLine(r: NonNullable<BenchResult["sendBatch"]>[number]): string {
  const share = r.shareOfLimit === undefined
    ? ""
    : `, ${(r.shareOfLimit * 100).toFixed(1)}% of 80/s`;
  const busiest = r.busiestSecondShare === undefined
    ? ""
    : `, busiest second ${(r.busiestSecondShare * 100).toFixed(1)}% (${r.instances} instances)`;
  const db = r.dbRoundTripsPerRecipient === undefined
    ? ""
    : `, ${r.dbRoundTripsPerRecipient.toFixed(2)} DB round trips/recipient`;
  const scale = r.scale
    ? `, create ${(r.scale.createMsPerRecipient * 1000).toFixed(1)} µs/recipient, progress ${
      r.scale.progressMs.toFixed(1)
    } ms, peak RSS ${mib(r.scale.peakRssBytes)} MiB, peak isolate ${
      mib(r.scale.peakIsolateBytes)
    } MiB`
    : "";
  return `${r.id.padEnd(20)} ${r.recipients} recipients, ${r.recipientsPerSecond.toFixed(1)}/s` +
    `${db}${share}${busiest}${scale}, ${r.doubleSends} double, ${r.skipped} skipped, ` +
    `${r.unknown} unknown`;
}
