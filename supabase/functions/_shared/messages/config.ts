/**
 * Settings only the message webhook reads, parsed once with zod. The tiers, database and shared
 * secrets come from the common webhook configuration (`core/config.ts`).
 */
import { z } from "zod";
import { parseEnv } from "../core/config.ts";

/** The message webhook's own settings. */
export interface MessageWebhookSettings {
  /** `META_VERIFY_TOKEN`: answers Meta's subscription handshake (GET hub.verify_token). */
  metaVerifyToken?: string;
  /** `MESSAGE_MAX_BODY_BYTES`: largest body accepted (default 4 MiB; Meta sends up to 3 MB). */
  maxBodyBytes: number;
}

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()));

const Schema = z.object({
  META_VERIFY_TOKEN: optionalText,
  MESSAGE_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(
    4 * 1024 * 1024,
  ),
});

/** Parses the message webhook's settings; throws ConfigError naming the variables. */
export function parseMessageSettings(
  env: Record<string, string | undefined>,
): MessageWebhookSettings {
  const e = parseEnv(Schema, env);
  return {
    metaVerifyToken: e.META_VERIFY_TOKEN,
    maxBodyBytes: e.MESSAGE_MAX_BODY_BYTES,
  };
}
