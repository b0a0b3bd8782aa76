/**
 * HMAC with the key's work done once: the keyed inner and outer hash states are computed when a
 * {@link HmacKey} is built, so each `digest(body)` only hashes the body and one short block.
 *
 * SHA-256 runs on `fast-sha256` (pure JS, typed arrays; its `HMAC.reset()` restores the saved keyed
 * states), the cheapest per call in Deno; SHA-1 and SHA-512 copy `node:crypto` hash states
 * (`Hash.copy()`). Both give exactly `createHmac(hash, key).update(body).digest()`. Signatures are
 * compared in constant time ({@link timingSafeEqualBytes}); hex signatures are decoded with a
 * lookup table ({@link decodeHex}): `node:crypto`'s `timingSafeEqual` and `Buffer.from(hex)` cost
 * more than the HMAC itself through Deno's Node compatibility layer.
 */
import { Buffer } from "node:buffer";
import { createHash, type Hash } from "node:crypto";
import { HMAC as Sha256Hmac } from "fast-sha256";

/** The hash functions webhook senders sign with. */
export type HmacHash = "sha1" | "sha256" | "sha512";

const BLOCK_BYTES: Record<HmacHash, number> = { sha1: 64, sha256: 64, sha512: 128 };
const encoder = new TextEncoder();

/** Nibble value of each ASCII code, -1 for a non-hex character. */
const NIBBLES = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) NIBBLES[48 + i] = i;
for (let i = 0; i < 6; i++) NIBBLES[65 + i] = NIBBLES[97 + i] = 10 + i;

/** Decodes lower- or upper-case hex; undefined when the text is empty, of odd length or not hex. */
export function decodeHex(hex: string): Uint8Array<ArrayBuffer> | undefined {
  const length = hex.length;
  if (length === 0 || length % 2 !== 0) return undefined;
  const out = new Uint8Array(length / 2);
  for (let i = 0, j = 0; i < length; i += 2, j++) {
    const a = hex.charCodeAt(i);
    const b = hex.charCodeAt(i + 1);
    const high = a < 128 ? NIBBLES[a] : -1;
    const low = b < 128 ? NIBBLES[b] : -1;
    if ((high | low) < 0) return undefined;
    out[j] = (high << 4) | low;
  }
  return out;
}

/**
 * Whether two byte arrays are equal, in time that depends only on their length (every byte is
 * compared; no early exit). Arrays of different lengths are unequal at once: callers compare
 * digests, whose length is public.
 */
export function timingSafeEqualBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

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
    return timingSafeEqualBytes(this.digest(body), expected);
  }

  /** Whether `hex` (either case) is the HMAC of `body`; false when it is not hex. */
  verifyHex(body: string | Uint8Array, hex: string): boolean {
    const expected = decodeHex(hex);
    return expected !== undefined && this.verify(body, expected);
  }

  /** Whether `base64` (standard alphabet, padded) is the HMAC of `body` (Twilio's form). */
  verifyBase64(body: string | Uint8Array, base64: string): boolean {
    const expected = Buffer.from(base64, "base64");
    // Buffer ignores what is not base64: only a canonical encoding of the bytes is accepted.
    if (expected.toString("base64") !== base64) return false;
    return this.verify(body, expected);
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
