/**
 * Supabase Edge Function entry point: wires the runtime to the handler.
 * Deploy with `supabase functions deploy webhook-replay`.
 */
import { replayHandlerFromEnv } from "./handler.ts";

export default {
  fetch: replayHandlerFromEnv(),
} satisfies Deno.ServeDefaultExport;
