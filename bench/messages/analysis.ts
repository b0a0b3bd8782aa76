/**
 * Correctness of a message run, from the replication slot and the final table: one insert per
 * message, a status update only when the status moves forward, every message stored and every
 * outgoing one ending `read`.
 */
import type postgres from "postgres";
import type { RowChange } from "../../tests/support/realtime_changes.ts";
import type { MessageWorkload } from "./workload.ts";

const MESSAGE_ID = /message_id\[text\]:'([^']*)'/;
const STATUS = /status\[text\]:(?:'([^']*)'|null)/;
const RANK: Record<string, number> = { pending: 0, sent: 1, delivered: 2, read: 3, played: 4 };

/** What the run did, against the workload. */
export interface MessageCorrectness {
  rowChanges: number;
  /** Row changes that changed nothing: a second insert, or a status that did not move forward. */
  leaked: number;
  /** Messages missing, stored more than once, or (outgoing) not ending `read`. */
  lost: number;
}

/** Checks the changes of `table` (ours or the baselines') against the workload. */
export async function checkMessages(
  sql: postgres.Sql,
  table: "whatsapp_messages" | "bench_naive_messages",
  changes: readonly RowChange[],
  workload: MessageWorkload,
): Promise<MessageCorrectness> {
  const perMessage = new Map<string, { inserts: number; rank: number; leaked: number }>();
  let rowChanges = 0;
  for (const change of changes) {
    if (change.table !== `public.${table}`) continue;
    rowChanges++;
    const id = MESSAGE_ID.exec(change.data)?.[1] ?? "?";
    const status = STATUS.exec(change.data)?.[1];
    const rank = status === undefined ? -1 : RANK[status] ?? -1;
    const seen = perMessage.get(id) ?? { inserts: 0, rank: -2, leaked: 0 };
    if (change.op === "INSERT") {
      if (seen.inserts > 0) seen.leaked++;
      seen.inserts++;
    } else if (rank <= seen.rank) {
      seen.leaked++;
    }
    seen.rank = Math.max(seen.rank, rank);
    perMessage.set(id, seen);
  }
  const rows = await sql.unsafe<{ message_id: string; status: string | null; n: number }[]>(
    `select message_id, max(status) as status, count(*)::int as n from public.${table}
     group by message_id`,
  );
  const final = new Map(rows.map((r) => [r.message_id, r]));
  let lost = 0;
  for (const id of workload.incoming) {
    if (final.get(id)?.n !== 1) lost++;
  }
  for (const id of workload.outgoing) {
    const row = final.get(id);
    if (row?.n !== 1 || row.status !== "read") lost++;
  }
  let leaked = 0;
  for (const seen of perMessage.values()) leaked += seen.leaked;
  return { rowChanges, leaked, lost };
}
