/**
 * Applies `supabase/migrations/*.sql` in order to a database, once each, recording them in
 * `supabase_migrations.schema_migrations` as the Supabase CLI does.
 */
import postgres from "postgres";

/** The migrations directory of this repository. */
export const MIGRATIONS_DIR = new URL("../../supabase/migrations/", import.meta.url);

/** What a Supabase project has before the first migration (roles, default privileges). */
export const PLATFORM_SQL = new URL("./supabase_platform.sql", import.meta.url);

/**
 * Applies pending migrations; returns the versions applied now. On a plain PostgreSQL (no
 * `supabase_admin` role) the platform's roles and default privileges are set up first.
 */
export async function applyMigrations(databaseUrl: string): Promise<string[]> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`
      create schema if not exists supabase_migrations;
      create table if not exists supabase_migrations.schema_migrations (
        version text primary key,
        statements text[],
        name text
      );`);
    const [{ supabase }] =
      await sql`select exists (select 1 from pg_roles where rolname = 'supabase_admin') as supabase`;
    if (!supabase) await sql.unsafe(await Deno.readTextFile(PLATFORM_SQL));
    const files: string[] = [];
    for await (const entry of Deno.readDir(MIGRATIONS_DIR)) {
      if (entry.isFile && /^[0-9]+_.+\.sql$/.test(entry.name)) files.push(entry.name);
    }
    files.sort();
    const done = new Set(
      (await sql`select version from supabase_migrations.schema_migrations`).map((r) => r.version),
    );
    const applied: string[] = [];
    for (const file of files) {
      const [version, ...rest] = file.replace(/\.sql$/, "").split("_");
      if (done.has(version)) continue;
      const text = await Deno.readTextFile(new URL(file, MIGRATIONS_DIR));
      await sql.begin(async (tx) => {
        await tx.unsafe(text);
        await tx`insert into supabase_migrations.schema_migrations (version, name)
                 values (${version}, ${rest.join("_")})`;
      });
      applied.push(version);
    }
    return applied;
  } finally {
    await sql.end({ timeout: 1 });
  }
}
