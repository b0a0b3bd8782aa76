/**
 * Supabase Edge Function entry point: wires the runtime to the handler.
 * Deploy with `supabase functions deploy whatsapp-membership-webhook`.
 */
import { membershipWebhookFromEnv } from "./handler.ts";

export default { fetch: membershipWebhookFromEnv() } satisfies Deno.ServeDefaultExport;
