/**
 * Supabase Edge Function entry point: wires the runtime to the handler.
 * Deploy with `supabase functions deploy whatsapp-send-batch`.
 */
import { sendBatchFromEnv } from "./handler.ts";

export default { fetch: sendBatchFromEnv() } satisfies Deno.ServeDefaultExport;
