/**
 * The topology rows as a table: the terminal report and the bench README's markdown.
 */
import { markdownTable, textTable } from "../lib/report.ts";
import type { TopologyRow } from "./scenarios.ts";
import type { Topology } from "./topologies.ts";

const HEAD = [
  "strategy",
  "topology",
  "load",
  "deliv/s",
  "p50 ms",
  "p99 ms",
  "first p50",
  "late copy p50",
  "racing p50",
  "DB rt/deliv",
  "leaked",
  "lost",
];

function cells(rows: readonly TopologyRow[]): string[][] {
  return rows.map((r) => [
    r.id,
    r.topology,
    r.load,
    r.deliveriesPerS.toFixed(0),
    r.p50Ms.toFixed(1),
    r.p99Ms.toFixed(1),
    r.firstP50Ms.toFixed(1),
    r.copyP50Ms.toFixed(1),
    r.racingCopyP50Ms.toFixed(1),
    r.dbRoundTripsPerDelivery.toFixed(2),
    String(r.leaked),
    String(r.lost),
  ]);
}

const describe = (topologies: readonly Topology[]) =>
  topologies.map((t) => `${t.name}: DB ${t.dbRttMs} ms, Upstash ${t.redisRttMs} ms`).join("; ");

/** Terminal lines of the topology rows (none when not run). */
export function topologyLines(
  rows: readonly TopologyRow[] | undefined,
  topologies: readonly Topology[],
): string[] {
  if (!rows || rows.length === 0) return [];
  return [
    "",
    `Topologies (RTT added; ${describe(topologies)}), latencies in ms:`,
    textTable(HEAD, cells(rows)),
  ];
}

/** The markdown of the topology rows (none when not run). */
export function topologyMarkdown(
  rows: readonly TopologyRow[] | undefined,
  topologies: readonly Topology[],
): string[] {
  if (!rows || rows.length === 0) return [];
  return [
    "",
    `Topologies (round-trip time added; ${describe(topologies)}; \`single\` = one event in ` +
    "flight; latencies in ms; first = an event's first copy alone, late copy = a copy reaching " +
    "another instance after the first was answered, racing = the later of two copies sent " +
    "together):",
    "",
    markdownTable(HEAD, cells(rows)),
  ];
}
