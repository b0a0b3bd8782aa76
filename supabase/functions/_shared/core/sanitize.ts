/**
 * The one sanitiser for text that reaches SQL or a provider, whatever it came in: body fields,
 * query parameters, headers, CSV cells. PostgreSQL cannot store NUL characters (`\u0000`) and
 * UTF-8 has no lone surrogates, so a sender's odd character would otherwise become a database
 * error: a 500, or a 503 that a gateway retries for days.
 *
 * Where it runs: `whatsapp-send-batch` cleans its JSON body, CSV text and query parameters;
 * `whatsapp-message-webhook` stores only text read through `core/formats/parse.ts`'s
 * `text()`, which cleans; the webhooks' query parameters go through `http.ts`'s `queryParam`, and
 * the one header stored (`X-Forwarded-For`, by the Idempotency-Key layer) through
 * {@link cleanText}. Membership events store only normalised identities (digits, JIDs), never raw
 * text; headers that are checked against a strict pattern (signatures, Idempotency-Key) are
 * refused, not cleaned, when they do not match.
 */

/**
 * Text PostgreSQL and providers accept: NULs removed and lone surrogates replaced by U+FFFD; cut
 * to `max` UTF-16 units when given (a pair cut in half becomes U+FFFD too).
 */
export function cleanText(value: string, max?: number): string {
  let clean = value.includes("\u0000") ? value.replaceAll("\u0000", "") : value;
  if (max !== undefined && clean.length > max) clean = clean.slice(0, max);
  return clean.isWellFormed() ? clean : clean.toWellFormed();
}

/** {@link cleanText} applied to every string, and every object key, inside a JSON value. */
export function cleanJson<T>(value: T): T {
  if (typeof value === "string") return cleanText(value) as T;
  if (Array.isArray(value)) return value.map(cleanJson) as T;
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[cleanText(key)] = cleanJson(item);
    return out as T;
  }
  return value;
}

/** One query or form parameter, cleaned; null when absent. */
export function cleanParam(params: URLSearchParams, name: string): string | null {
  const value = params.get(name);
  return value === null ? null : cleanText(value);
}
