/**
 * The settings that authenticate callers of the user-facing functions, as zod fields every such
 * function's config schema spreads in, and their typed form. Both of Supabase's systems are read:
 * the legacy HS256 JWT secret, and the JWT signing keys (an inline key set, a key set URL, or the
 * project's well-known endpoint) with the new secret and publishable API keys.
 */
import { z } from "zod";
import { LOCAL_JWT_SECRET } from "./jwt.ts";

/** Where Supabase Auth publishes a project's signing keys, under `SUPABASE_URL`. */
export const JWKS_PATH = "/auth/v1/.well-known/jwks.json";

/** One public key of a key set, as JSON. */
export type PublicJwk = Record<string, unknown> & { kty: string };

/** Where user tokens signed with the signing keys are verified against. */
export type KeySetSource = { kind: "inline"; keys: PublicJwk[] } | { kind: "remote"; url: string };

/** The typed authentication settings. */
export interface AuthConfig {
  /** `SUPABASE_JWT_SECRET`: verifies legacy HS256 tokens. */
  jwtSecret: string;
  /** The signing keys' set; undefined when neither it nor `SUPABASE_URL` is set. */
  keySet?: KeySetSource;
  /** Least time between two fetches of a remote key set for an unknown `kid`. */
  keySetCooldownMs: number;
  /** `SUPABASE_SECRET_KEYS` values: each acts as the service role. */
  secretKeys: string[];
  /** `SUPABASE_PUBLISHABLE_KEYS` values: valid, but neither a user nor the service role. */
  publishableKeys: string[];
}

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()));

/** Whether a URL may carry keys: https, or http to this machine (the local stack). */
function trustedKeyUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    if (url.protocol === "https:") return true;
    const host = url.hostname;
    return url.protocol === "http:" &&
      (host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host));
  } catch {
    return false;
  }
}

/** Parses JSON without ever echoing the text (it can hold keys) in an error. */
function parseJson(text: string, ctx: z.RefinementCtx, message: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    ctx.addIssue({ code: "custom", message });
    return z.NEVER;
  }
}

const keyMap = (name: string) =>
  optionalText.transform((text, ctx): string[] => {
    if (text === undefined) return [];
    const message = `${name} must be a JSON object of named keys, e.g. {"default":"sb_…"}`;
    const value = parseJson(text, ctx, message);
    if (value === z.NEVER) return [];
    if (
      typeof value !== "object" || value === null || Array.isArray(value) ||
      !Object.values(value).every((key) => typeof key === "string" && key.trim().length >= 8)
    ) {
      ctx.addIssue({ code: "custom", message });
      return [];
    }
    return Object.values(value as Record<string, string>).map((key) => key.trim());
  });

const keySet = optionalText.transform((text, ctx): PublicJwk[] | undefined => {
  if (text === undefined) return undefined;
  const message = 'SUPABASE_JWKS must be a JSON key set, {"keys":[…]} or […]';
  const value = parseJson(text, ctx, message);
  if (value === z.NEVER) return undefined;
  const keys = Array.isArray(value) ? value : (value as { keys?: unknown } | null)?.keys;
  if (
    !Array.isArray(keys) ||
    !keys.every((key) => typeof key === "object" && key !== null && typeof key.kty === "string")
  ) {
    ctx.addIssue({ code: "custom", message });
    return undefined;
  }
  if (keys.some((key) => "d" in key)) {
    ctx.addIssue({ code: "custom", message: "SUPABASE_JWKS must hold no private key" });
    return undefined;
  }
  return keys as PublicJwk[];
});

/** The zod fields of the authentication settings, for a function's config schema. */
export const AUTH_ENV_FIELDS = {
  SUPABASE_JWT_SECRET: optionalText.pipe(z.string().min(32).default(LOCAL_JWT_SECRET)),
  SUPABASE_JWKS: keySet,
  SUPABASE_JWKS_URL: optionalText.pipe(
    z.url().refine(trustedKeyUrl, "SUPABASE_JWKS_URL must be https (http only to localhost)")
      .optional(),
  ),
  SUPABASE_URL: optionalText.pipe(z.url().optional()),
  SUPABASE_SECRET_KEYS: keyMap("SUPABASE_SECRET_KEYS"),
  SUPABASE_PUBLISHABLE_KEYS: keyMap("SUPABASE_PUBLISHABLE_KEYS"),
  JWKS_COOLDOWN_MS: z.coerce.number().int().min(0).max(600_000).default(30_000),
};

/** The parsed values of {@link AUTH_ENV_FIELDS}. */
export type AuthEnv = z.infer<z.ZodObject<typeof AUTH_ENV_FIELDS>>;

/**
 * The typed settings: the inline key set first, else `SUPABASE_JWKS_URL`, else the well-known
 * endpoint of `SUPABASE_URL` (when that is https or local).
 */
export function authConfigFrom(e: AuthEnv): AuthConfig {
  const derived = e.SUPABASE_URL && `${e.SUPABASE_URL.replace(/\/+$/, "")}${JWKS_PATH}`;
  const url = e.SUPABASE_JWKS_URL ?? (derived && trustedKeyUrl(derived) ? derived : undefined);
  return {
    jwtSecret: e.SUPABASE_JWT_SECRET,
    keySet: e.SUPABASE_JWKS
      ? { kind: "inline", keys: e.SUPABASE_JWKS }
      : url
      ? { kind: "remote", url }
      : undefined,
    keySetCooldownMs: e.JWKS_COOLDOWN_MS,
    secretKeys: e.SUPABASE_SECRET_KEYS,
    publishableKeys: e.SUPABASE_PUBLISHABLE_KEYS,
  };
}
