/**
 * Supabase Edge Function entry point: wires the runtime to the handler.
 * Deploy with `supabase functions deploy webhook-stats`.
 */
import { statsHandlerFromEnv } from "./handler.ts";

export default { fetch: statsHandlerFromEnv() } satisfies Deno.ServeDefaultExport;
