/**
 * The database connection every function shares the settings of: a postgres.js pool over
 * `SUPABASE_DB_URL`, direct or through a transaction-mode pooler (Supavisor on port 6543,
 * PgBouncer), with every call bounded in time.
 *
 * Behind such a pooler each transaction may run on another server connection, so the pool keeps
 * no session state: no prepared statements, no session `SET`, and no startup parameter beyond
 * `application_name` (the poolers refuse the others, e.g. `statement_timeout`). Server-side
 * statement timeouts are set per call (`set local`, see one_trip.ts) or per transaction.
 */
import postgres from "postgres";
import { DatabaseUnavailableError } from "../exactly_once.ts";

/** Options of {@link createPostgresPool}. */
export interface PostgresPoolOptions {
  /** A `postgres://` connection string. */
  url: string;
  /** Connections in the pool. */
  poolMax: number;
  /** Bound on connecting, in milliseconds (calls bound their statements themselves). */
  timeoutMs: number;
  /** Shown in `pg_stat_activity`. */
  applicationName: string;
}

/** Creates the pool. */
export function createPostgresPool(options: PostgresPoolOptions): postgres.Sql {
  return postgres(options.url, {
    max: options.poolMax,
    // Prepared statements do not survive a transaction-mode pooler.
    prepare: false,
    connect_timeout: Math.max(1, Math.ceil(options.timeoutMs / 1000)),
    idle_timeout: 30,
    max_lifetime: 30 * 60,
    onnotice: () => {},
    // The only startup parameter besides those postgres.js always sends (user, database,
    // client_encoding); PgBouncer and Supavisor track it per client.
    connection: { application_name: options.applicationName },
  });
}

/**
 * Runs one database call within `timeoutMs`; any failure (connection, timeout, SQL error)
 * becomes {@link DatabaseUnavailableError}, which the functions answer with 503.
 */
export async function withinTimeout<T>(call: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the database took longer than ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([call, timeout]);
  } catch (error) {
    if (error instanceof DatabaseUnavailableError) throw error;
    throw new DatabaseUnavailableError({ cause: error });
  } finally {
    clearTimeout(timer);
  }
}
