/**
 * Counts Realtime events where Realtime reads them: PostgreSQL's logical replication stream.
 *
 * Each feed owns a logical replication slot with the `test_decoding` plugin, created before the
 * test acts, and keeps only changes to tables of the `supabase_realtime` publication.
 */
import type postgres from "postgres";

/** One row change decoded from the replication stream. */
export interface RowChange {
  /** `schema.table` */
  table: string;
  op: "INSERT" | "UPDATE" | "DELETE";
  /** The decoded column values, as test_decoding prints them. */
  data: string;
}

const LINE = /^table ([^:]+): (INSERT|UPDATE|DELETE): (.*)$/s;

/** A logical replication slot that collects row changes. */
export class RealtimeChangeFeed {
  readonly #sql: postgres.Sql;
  readonly #slot: string;
  readonly #changes: RowChange[] = [];

  private constructor(sql: postgres.Sql, slot: string) {
    this.#sql = sql;
    this.#slot = slot;
  }

  /** Creates the slot; only changes committed after this call are seen. */
  static async open(sql: postgres.Sql): Promise<RealtimeChangeFeed> {
    const slot = `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
    await sql`select pg_create_logical_replication_slot(${slot}, 'test_decoding')`;
    return new RealtimeChangeFeed(sql, slot);
  }

  /** Reads new changes on tables in the supabase_realtime publication; `filter` keeps matching ones. */
  async changes(filter?: string): Promise<RowChange[]> {
    const published = new Set(
      (await this.#sql<{ name: string }[]>`
        select schemaname || '.' || tablename as name from pg_publication_tables
        where pubname = 'supabase_realtime'`).map((r) => r.name),
    );
    const rows = await this.#sql<{ data: string }[]>`
      select data from pg_logical_slot_get_changes(${this.#slot}, null, null,
        'include-xids', '0', 'skip-empty-xacts', '1')`;
    for (const { data } of rows) {
      const match = LINE.exec(data);
      if (!match || !published.has(match[1])) continue;
      this.#changes.push({ table: match[1], op: match[2] as RowChange["op"], data: match[3] });
    }
    return filter === undefined
      ? [...this.#changes]
      : this.#changes.filter((c) => c.data.includes(filter));
  }

  /** Drops the slot. */
  async close(): Promise<void> {
    await this.#sql`select pg_drop_replication_slot(${this.#slot})`;
  }
}
