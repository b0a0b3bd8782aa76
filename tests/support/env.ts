/**
 * The servers `deno task test` started, and small helpers shared by the tests.
 */
import postgres from "postgres";
import { signBody } from "../../supabase/functions/_shared/core/webhook_auth.ts";
import { SECRETS } from "./signing.ts";

/** Connection string of the test PostgreSQL (migrations applied). */
export function databaseUrl(): string {
  const url = Deno.env.get("TEST_DATABASE_URL");
  if (!url) throw new Error("TEST_DATABASE_URL is not set: run the tests with `deno task test`");
  return url;
}

/**
 * The database URL the functions under test connect with: PgBouncer's (transaction mode) in the
 * pooled pass of `deno task test` (`TEST_POOLED_DATABASE_URL`), else the direct one.
 */
export function functionDatabaseUrl(): string {
  return Deno.env.get("TEST_POOLED_DATABASE_URL") || databaseUrl();
}

/** URL of the shared test Redis. */
export function redisUrl(): string {
  const url = Deno.env.get("TEST_REDIS_URL");
  if (!url) throw new Error("TEST_REDIS_URL is not set: run the tests with `deno task test`");
  return url;
}

/** A postgres.js client for assertions. */
export function sqlClient(max = 2): postgres.Sql {
  return postgres(databaseUrl(), { max, onnotice: () => {} });
}

let counter = 0;

/** A group JID that no other test uses. */
export function uniqueGroup(): string {
  counter++;
  const random = crypto.getRandomValues(new Uint32Array(1))[0] % 1_000_000;
  return `120363${String(Date.now() % 1e9).padStart(9, "0")}${String(random).padStart(6, "0")}${
    String(counter).padStart(3, "0")
  }@g.us`;
}

/** The rows of one group, ordered by participant. */
export async function groupRows(sql: postgres.Sql, groupJid: string) {
  const rows = await sql<{ phone: string; status: string; last_event_at: Date }[]>`
    select phone, status, last_event_at from public.whatsapp_group_members
    where group_jid = ${groupJid} order by phone`;
  return [...rows];
}

/** The secret the tests sign with (`WEBHOOK_SECRET`). */
export const TEST_SECRET = SECRETS.WEBHOOK_SECRET;

/** Computes `sha256=<hex>` for a body, as `X-Webhook-Signature` carries it. */
export function signature(body: string, secret = TEST_SECRET): string {
  return `sha256=${signBody(secret, body)}`;
}

/** POSTs a JSON body signed with {@link TEST_SECRET}; returns status and parsed body. */
export async function postSigned(
  url: string,
  payload: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = typeof payload === "string" ? payload : JSON.stringify(payload);
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-webhook-signature": signature(body),
      ...headers,
    },
    body,
  });
  return { status: response.status, body: await response.json() };
}
