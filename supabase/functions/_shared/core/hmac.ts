/**
 * HMAC with the key's work done once: the keyed inner and outer hash states are computed when a
 * {@link HmacKey} is built, so each `digest(body)` only hashes the body and one short block.
 *
 * SHA-256 runs on `fast-sha256` (pure JS, typed arrays; its `HMAC.reset()` restores the saved keyed
 * states), the cheapest per call in Deno; SHA-1 and SHA-512 copy `node:crypto` hash states
 * (`Hash.copy()`). Both give exactly `createHmac(hash, key).update(body).digest()`. Comparison in
 * constant time is {@link HmacKey.verify}'s job (`timingSafeEqual` over equal lengths).
 */
import { Buffer } from "node:buffer";
import { createHash, type Hash, timingSafeEqual } from "node:crypto";
import { HMAC as Sha256Hmac } from "fast-sha256";

/** The hash functions webhook senders sign with. */
export type HmacHash = "sha1" | "sha256" | "sha512";

const BLOCK_BYTES: Record<HmacHash, number> = { sha1: 64, sha256: 64, sha512: 128 };
const encoder = new TextEncoder();

/** An HMAC key with its keyed hash states precomputed; `digest` is synchronous. */
export class HmacKey {
  /** The hash function. */
  readonly hash: HmacHash;
  readonly #digest: (body: Uint8Array) => Uint8Array;

  /** Precomputes the keyed states of `key` (UTF-8 when a string) for `hash`. */
  constructor(hash: HmacHash, key: string | Uint8Array) {
    this.hash = hash;
    const keyBytes = typeof key === "string" ? encoder.encode(key) : key;
    this.#digest = hash === "sha256" ? sha256Digest(keyBytes) : nodeDigest(hash, keyBytes);
  }

  /** The HMAC of `body` (UTF-8 when a string), as `createHmac(hash, key).update(body).digest()`. */
  digest(body: string | Uint8Array): Uint8Array {
    return this.#digest(typeof body === "string" ? encoder.encode(body) : body);
  }

  /** The HMAC of `body` as lower-case hex. */
  hex(body: string | Uint8Array): string {
    return Buffer.from(this.digest(body)).toString("hex");
  }

  /** The HMAC of `body` as standard base64 (Twilio's `X-Twilio-Signature` form). */
  base64(body: string | Uint8Array): string {
    return Buffer.from(this.digest(body)).toString("base64");
  }

  /** Whether `expected` (raw bytes) is the HMAC of `body`, compared in constant time. */
  verify(body: string | Uint8Array, expected: Uint8Array): boolean {
    const actual = this.digest(body);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }
}

function sha256Digest(key: Uint8Array): (body: Uint8Array) => Uint8Array {
  const keyed = new Sha256Hmac(key);
  return (body) => {
    keyed.reset();
    keyed.update(body);
    return keyed.digest();
  };
}

function nodeDigest(hash: "sha1" | "sha512", key: Uint8Array): (body: Uint8Array) => Uint8Array {
  const block = BLOCK_BYTES[hash];
  const padded = new Uint8Array(block);
  padded.set(key.length > block ? createHash(hash).update(key).digest() : key);
  const inner = new Uint8Array(block);
  const outer = new Uint8Array(block);
  for (let i = 0; i < block; i++) {
    inner[i] = padded[i] ^ 0x36;
    outer[i] = padded[i] ^ 0x5c;
  }
  const innerState: Hash = createHash(hash).update(inner);
  const outerState: Hash = createHash(hash).update(outer);
  return (body) => {
    const innerDigest = innerState.copy().update(body).digest();
    return outerState.copy().update(innerDigest).digest();
  };
}
