/**
 * Supabase Edge Function entry point: wires the runtime to the handler.
 * Deploy with `supabase functions deploy whatsapp-message-webhook`.
 */
import { messageWebhookFromEnv } from "./handler.ts";

export default { fetch: messageWebhookFromEnv() } satisfies Deno.ServeDefaultExport;
