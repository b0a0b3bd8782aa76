/**
 * Correctness figures of one run: Realtime row changes per (group, phone) from the replication
 * slot against the changes the workload really makes, and the final table against the expected
 * state.
 */
import type postgres from "postgres";
import type { RowChange } from "../../tests/support/realtime_changes.ts";
import type { Workload } from "./workload.ts";

/** What the run did to the data. */
export interface Correctness {
  /** Realtime row changes seen on the slot. */
  rowChanges: number;
  /** Real state changes the workload makes (one per unique event). */
  expectedChanges: number;
  /** Row changes beyond one per real state change, summed over (group, phone). */
  leaked: number;
  /** (group, phone) pairs whose final state differs from the expected one. */
  lost: number;
  /** Up to 10 pairs that leaked or were lost, phones masked, for diagnosis. */
  examples: string[];
}

const GROUP = /group_jid\[text\]:'([^']*)'/;
const PHONE = /phone\[text\]:'([^']*)'/;

/** Compares the slot's changes and the table with the workload's expectations. */
export async function checkCorrectness(
  sql: postgres.Sql,
  changes: readonly RowChange[],
  workload: Workload,
): Promise<Correctness> {
  const perPair = new Map<string, number>();
  for (const change of changes) {
    if (change.table !== "public.whatsapp_group_members") continue;
    const id = `${GROUP.exec(change.data)?.[1]}|${PHONE.exec(change.data)?.[1]}`;
    perPair.set(id, (perPair.get(id) ?? 0) + 1);
  }
  const rows = await sql<{ group_jid: string; phone: string; status: string }[]>`
    select group_jid, phone, status from public.whatsapp_group_members`;
  const final = new Map(rows.map((r) => [`${r.group_jid}|${r.phone}`, r.status]));
  let leaked = 0;
  let lost = 0;
  let expectedChanges = 0;
  const examples: string[] = [];
  workload.pairs.forEach((pair, index) => {
    const id = `${pair.groupJid}|${pair.phone}`;
    expectedChanges += pair.expectedChanges;
    const changed = perPair.get(id) ?? 0;
    leaked += Math.max(0, changed - pair.expectedChanges);
    const status = final.get(id);
    if (status !== pair.expectedStatus) lost++;
    if (
      (status !== pair.expectedStatus || changed > pair.expectedChanges) && examples.length < 10
    ) {
      examples.push(
        `pair ${index} (…${pair.phone.slice(-3)}): ${pair.expectedChanges} event(s), ` +
          `${changed} change(s), final ${status ?? "absent"}, expected ${pair.expectedStatus}`,
      );
    }
  });
  // Changes to rows the workload never mentions would be leaks too.
  const known = new Set(workload.pairs.map((p) => `${p.groupJid}|${p.phone}`));
  for (const [id, n] of perPair) if (!known.has(id)) leaked += n;
  return { rowChanges: changes.length, expectedChanges, leaked, lost, examples };
}
