/**
 * The Data API path to an apply SQL function: supabase-js `rpc` with the service-role key, for
 * deployments without `SUPABASE_DB_URL`.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { DatabaseUnavailableError } from "../exactly_once.ts";

/** A service-role client that keeps no session. */
export function createServiceClient(url: string, serviceRoleKey: string): SupabaseClient {
  return createClient(url, serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
}

/**
 * Calls `POST /rest/v1/rpc/<fn>` within `timeoutMs` and returns its rows; any failure becomes
 * {@link DatabaseUnavailableError}.
 */
export async function callRpc<Row>(
  client: SupabaseClient,
  fn: string,
  args: Record<string, unknown>,
  timeoutMs: number,
): Promise<Row[]> {
  let response;
  try {
    response = await client.rpc(fn, args).abortSignal(AbortSignal.timeout(timeoutMs));
  } catch (error) {
    throw new DatabaseUnavailableError({ cause: error });
  }
  if (response.error || !Array.isArray(response.data)) {
    throw new DatabaseUnavailableError({
      cause: new Error(response.error?.message ?? "rpc returned no rows"),
    });
  }
  return response.data as Row[];
}
