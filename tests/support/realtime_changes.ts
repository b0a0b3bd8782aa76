/**
 * Counts Realtime events where Realtime reads them: PostgreSQL's logical replication stream for
 * postgres_changes, and the rows of `realtime.messages` for broadcasts.
 *
 * Each feed owns a logical replication slot with the `test_decoding` plugin, created before the
 * test acts, and keeps changes to tables of the `supabase_realtime` publication. When Broadcast
 * from Database is on (the test command turns it on), the same stream carries every broadcast
 * (an insert into `realtime.messages`), and each read checks that the broadcasts are exactly one
 * per row change, in the same order: so every test that counts changes counts broadcasts too.
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
const BROADCAST_TABLE = "realtime.messages";
const BROADCAST_TOPIC = /topic\[text\]:'([^']*)'/;
const BROADCAST_SOURCE = /"table": "([^"]+)"/;
const BROADCAST_OP = /"operation": "(INSERT|UPDATE|DELETE)"/;

/** One broadcast read from `realtime.messages` (Broadcast from Database). */
export interface Broadcast {
  topic: string;
  /** `schema.table` of the row change it carries. */
  table: string;
  op: RowChange["op"];
  /** The decoded row of realtime.messages, as test_decoding prints it. */
  data: string;
}

/** A logical replication slot that collects row changes. */
export class RealtimeChangeFeed {
  readonly #sql: postgres.Sql;
  readonly #slot: string;
  readonly #changes: RowChange[] = [];
  readonly #broadcasts: Broadcast[] = [];
  /** `schema.table` of the tables whose broadcast triggers were on when the feed opened. */
  readonly #broadcastTables: ReadonlySet<string>;

  private constructor(sql: postgres.Sql, slot: string, broadcastTables: ReadonlySet<string>) {
    this.#sql = sql;
    this.#slot = slot;
    this.#broadcastTables = broadcastTables;
  }

  /** Creates the slot; only changes committed after this call are seen. */
  static async open(sql: postgres.Sql): Promise<RealtimeChangeFeed> {
    const slot = `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
    await sql`select pg_create_logical_replication_slot(${slot}, 'test_decoding')`;
    const tables = await sql<{ name: string }[]>`
      select distinct c.relnamespace::regnamespace::text || '.' || c.relname as name
        from pg_trigger t join pg_class c on c.oid = t.tgrelid
       where t.tgname like 'whatsapp\_%\_broadcast%' and not t.tgisinternal
         and t.tgenabled <> 'D'`;
    return new RealtimeChangeFeed(sql, slot, new Set(tables.map((t) => t.name)));
  }

  /** Whether Broadcast from Database was on when the feed opened. */
  get broadcasting(): boolean {
    return this.#broadcastTables.size > 0;
  }

  /** Broadcasts read so far (call {@link changes} first); `filter` keeps matching ones. */
  broadcasts(filter?: string): Broadcast[] {
    return filter === undefined
      ? [...this.#broadcasts]
      : this.#broadcasts.filter((b) => b.data.includes(filter));
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
      if (!match) continue;
      if (match[1] === BROADCAST_TABLE && match[2] === "INSERT") {
        const topic = BROADCAST_TOPIC.exec(match[3])?.[1] ?? "";
        if (!topic.startsWith("whatsapp:")) continue;
        this.#broadcasts.push({
          topic,
          table: `public.${BROADCAST_SOURCE.exec(match[3])?.[1]}`,
          op: (BROADCAST_OP.exec(match[3])?.[1] ?? "INSERT") as RowChange["op"],
          data: match[3],
        });
        continue;
      }
      if (!published.has(match[1])) continue;
      this.#changes.push({ table: match[1], op: match[2] as RowChange["op"], data: match[3] });
    }
    if (this.broadcasting) this.#checkBroadcasts();
    return filter === undefined
      ? [...this.#changes]
      : this.#changes.filter((c) => c.data.includes(filter));
  }

  /**
   * Throws unless the broadcasts are exactly one per row change of a broadcasting table, in the
   * same order (other published tables, e.g. a benchmark's baseline table, broadcast nothing).
   */
  #checkBroadcasts(): void {
    const changes = this.#changes.filter((c) => this.#broadcastTables.has(c.table))
      .map((c) => `${c.table} ${c.op}`);
    const broadcasts = this.#broadcasts.map((b) => `${b.table} ${b.op}`);
    if (changes.join("\n") !== broadcasts.join("\n")) {
      throw new Error(
        `Realtime: ${changes.length} row changes but ${broadcasts.length} broadcasts:\n` +
          `changes:    ${changes.join(", ")}\nbroadcasts: ${broadcasts.join(", ")}`,
      );
    }
  }

  /** Drops the slot. */
  async close(): Promise<void> {
    await this.#sql`select pg_drop_replication_slot(${this.#slot})`;
  }
}
