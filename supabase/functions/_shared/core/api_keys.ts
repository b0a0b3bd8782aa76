/**
 * Supabase's API keys (`sb_secret_…`, `sb_publishable_…`; not JWTs): which kind a presented key is,
 * compared in constant time with every configured key, and the headers a service call sends one in.
 */
import { createHash } from "node:crypto";
import { timingSafeEqualBytes } from "./hmac.ts";

/** What a configured API key grants: the service role, or nothing beyond the project's name. */
export type ApiKeyKind = "secret" | "publishable";

const digest = (value: string): Uint8Array => createHash("sha256").update(value).digest();

/** The project's secret and publishable keys, kept as digests. */
export class ApiKeys {
  readonly #keys: { kind: ApiKeyKind; digest: Uint8Array }[];

  constructor(keys: { secret: readonly string[]; publishable: readonly string[] }) {
    this.#keys = [
      ...keys.secret.map((key) => ({ kind: "secret" as const, digest: digest(key) })),
      ...keys.publishable.map((key) => ({ kind: "publishable" as const, digest: digest(key) })),
    ];
  }

  /**
   * The kind of `presented`, or undefined when it matches no key. Digests of equal length are
   * compared with every key, without an early exit, so the time says nothing about the keys.
   */
  kindOf(presented: string): ApiKeyKind | undefined {
    const candidate = digest(presented);
    let found: ApiKeyKind | undefined;
    for (const key of this.#keys) {
      if (timingSafeEqualBytes(candidate, key.digest) && found === undefined) found = key.kind;
    }
    return found;
  }
}

/** Whether a credential is one of the new API keys rather than a JWT. */
export function isApiKey(credential: string): boolean {
  return credential.startsWith("sb_");
}

/**
 * The headers a call to another function authenticates with as the service role: a secret key in
 * `apikey`, a legacy service-role JWT as the bearer token.
 */
export function serviceAuthHeaders(key: string): Record<string, string> {
  return isApiKey(key) ? { apikey: key } : { authorization: `Bearer ${key}` };
}
