/**
 * The database's own surface, checked against a running local PostgreSQL with every migration
 * applied: the pgTAP grant matrix and abuse cases (`supabase/tests/*_test.sql`, run with
 * `pg_prove` as `supabase test db` does) and Supabase's Security and Performance Advisor from the
 * pinned CLI (`supabase db advisors --fail-on warn`).
 */

import postgres from "postgres";

/** Turns Broadcast from Database on (`public.whatsapp_realtime_broadcasts(true)`). */
export async function enableBroadcasts(databaseUrl: string): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`select public.whatsapp_realtime_broadcasts(true)`;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The pgTAP files' directory of this repository. */
export const PGTAP_DIR = new URL("../../supabase/tests/", import.meta.url);

/** Runs every `*_test.sql` in supabase/tests with pg_prove; returns whether all passed. */
export async function runPgTap(databaseUrl: string): Promise<boolean> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(PGTAP_DIR)) {
    if (entry.isFile && entry.name.endsWith("_test.sql")) {
      files.push(new URL(entry.name, PGTAP_DIR).pathname);
    }
  }
  files.sort();
  console.log(`pgTAP: ${files.length} files (pg_prove)`);
  const status = await new Deno.Command("pg_prove", {
    args: ["--dbname", databaseUrl, "--failures", ...files],
    stdin: "null",
    env: { PGOPTIONS: "--client-min-messages=warning" },
  }).spawn().status;
  return status.success;
}

/** Runs the Security and Performance Advisor; returns whether it found nothing at WARN or above. */
export async function runAdvisor(databaseUrl: string): Promise<boolean> {
  console.log("advisor: supabase db advisors --type all --fail-on warn");
  const status = await new Deno.Command("supabase", {
    args: [
      "db",
      "advisors",
      `--remote=${databaseUrl}`,
      "--type",
      "all",
      "--level",
      "warn",
      "--fail-on",
      "warn",
    ],
    stdin: "null",
    env: { SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" },
  }).spawn().status;
  return status.success;
}
