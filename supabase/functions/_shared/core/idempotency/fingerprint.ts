/**
 * The request fingerprint stored with a key: SHA-256 of method, path (with query) and body. The
 * body itself is never stored.
 */
import { createHash } from "node:crypto";

/** Hex SHA-256 over `METHOD \n path?query \n body`. */
export function fingerprintRequest(method: string, url: string, body: Uint8Array): string {
  const parsed = new URL(url);
  return createHash("sha256")
    .update(`${method.toUpperCase()}\n${parsed.pathname}${parsed.search}\n`)
    .update(body)
    .digest("hex");
}
