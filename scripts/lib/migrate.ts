/**
 * Applies `supabase/migrations/*.sql` in order to a database, once each, recording them in
 * `supabase_migrations.schema_migrations` as the Supabase CLI does.
 */
import postgres from "postgres";

/** The migrations directory of this repository. */
export const MIGRATIONS_DIR = new URL("../../supabase/migrations/", import.meta.url);

/** Applies pending migrations; returns the versions applied now. */
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
