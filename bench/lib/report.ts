/**
 * Presentation of benchmark results: the terminal table, the markdown for bench/README.md and
 * an SVG chart.
 */
import type { AfterRecoveryFigure } from "./after_recovery.ts";

/** One row of the comparison table. */
export interface StrategyRow {
  /** Machine name, e.g. `noDedup`, `ours+redis`, `fault:redis-killed`. */
  id: string;
  label: string;
  deliveries: number;
  uniqueEvents: number;
  /** HTTP attempts, sender retries included. */
  attempts: number;
  non2xx: number;
  gaveUp: number;
  rowChanges: number;
  expectedChanges: number;
  leaked: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
  deliveriesPerS: number;
  /** Database requests (Sync/Query messages through the counting proxy) per delivery. */
  dbRoundTripsPerDelivery: number;
  /** Redis fault rows: database round trips per delivery in the 10 s after Redis returns. */
  afterRedisReturns?: AfterRecoveryFigure;
  /**
   * Realtime broadcasts read from realtime.messages (Broadcast from Database is on in the bench):
   * the feed checks they are exactly one per row change of a broadcast table.
   */
  broadcasts?: number;
  /** Calls of the apply function (pg_stat_user_functions) per delivery; ours only. */
  applyCallsPerDelivery?: number;
  /** Redis commands per delivery (Upstash endpoint). */
  redisCommandsPerDelivery: number;
  /** Redis REST requests (batches) per delivery. */
  redisBatchesPerDelivery: number;
  /** Dedup Map entries resident after the run, summed over live instances. */
  mapEntries: number;
  /** Heap used per live instance after the run, MB (mean). */
  heapMB: number;
  /** Resident set per live instance after the run, MB (mean). */
  rssMB: number;
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "–";

/** Column headers and cell values of the comparison table. */
export function tableCells(rows: readonly StrategyRow[]): { head: string[]; body: string[][] } {
  const head = [
    "strategy",
    "deliveries",
    "unique",
    "row changes",
    "leaked dups",
    "lost",
    "non-2xx",
    "p50 ms",
    "p99 ms",
    "deliv/s",
    "DB rt/deliv",
    "Redis cmd/deliv",
    "Redis batch/deliv",
    "Map entries",
    "heap MB",
  ];
  const body = rows.map((r) => [
    r.label,
    fmt(r.deliveries),
    fmt(r.uniqueEvents),
    fmt(r.rowChanges),
    fmt(r.leaked),
    fmt(r.lost),
    fmt(r.non2xx),
    fmt(r.p50Ms, 1),
    fmt(r.p99Ms, 1),
    fmt(r.deliveriesPerS),
    fmt(r.dbRoundTripsPerDelivery, 2),
    fmt(r.redisCommandsPerDelivery, 2),
    fmt(r.redisBatchesPerDelivery, 2),
    fmt(r.mapEntries),
    fmt(r.heapMB, 1),
  ]);
  return { head, body };
}

/** Bytes as whole MiB (`–` when not measured). */
export function mib(bytes: number | undefined): string {
  return bytes === undefined ? "–" : (bytes / 2 ** 20).toFixed(0);
}

/** A plain-text table for the terminal. */
export function textTable(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** A markdown table. */
export function markdownTable(head: string[], body: string[][]): string {
  const row = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    row(head),
    row(head.map((_, i) => (i === 0 ? "---" : "---:"))),
    ...body.map(row),
  ].join("\n");
}

const escapeXml = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** An SVG chart: leaked duplicates, lost events and deliveries/s per strategy, side by side. */
export function svgChart(rows: readonly StrategyRow[], title: string): string {
  const labelW = 300;
  const panelW = 200;
  const gap = 30;
  const rowH = 22;
  const top = 60;
  const panels: { name: string; value: (r: StrategyRow) => number; color: string }[] = [
    { name: "leaked duplicates", value: (r) => r.leaked, color: "#d9534f" },
    { name: "lost events", value: (r) => r.lost, color: "#f0ad4e" },
    { name: "deliveries/s", value: (r) => r.deliveriesPerS, color: "#5b8def" },
  ];
  const width = labelW + panels.length * (panelW + gap) + 20;
  const height = top + rows.length * rowH + 30;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  panels.forEach((panel, p) => {
    const x0 = labelW + p * (panelW + gap);
    const max = Math.max(1, ...rows.map(panel.value));
    parts.push(
      `<text x="${x0}" y="${top - 12}" font-weight="bold">${escapeXml(panel.name)}</text>`,
      `<line x1="${x0}" y1="${top - 4}" x2="${x0}" y2="${
        top + rows.length * rowH
      }" stroke="#999"/>`,
    );
    rows.forEach((row, i) => {
      const v = panel.value(row);
      const w = Math.max(v > 0 ? 1 : 0, (v / max) * (panelW - 50));
      const y = top + i * rowH;
      parts.push(
        `<rect x="${x0}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" ` +
          `fill="${panel.color}"/>`,
        `<text x="${(x0 + w + 4).toFixed(1)}" y="${y + rowH - 8}">${fmt(v)}</text>`,
      );
    });
  });
  rows.forEach((row, i) => {
    parts.push(
      `<text x="10" y="${top + i * rowH + rowH - 8}">${escapeXml(row.label)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
