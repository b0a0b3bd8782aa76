/**
 * `HmacKey` (precomputed keyed states) against `node:crypto` `createHmac`, for every hash the
 * webhooks use and keys on each side of the block size.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { type HmacHash, HmacKey } from "../supabase/functions/_shared/core/hmac.ts";

const HASHES: HmacHash[] = ["sha1", "sha256", "sha512"];

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

// Empty, short, one less than / exactly / one more than each block size (64, 128), and long.
const KEY_LENGTHS = [0, 1, 20, 32, 63, 64, 65, 127, 128, 129, 200, 1000];
const BODY_LENGTHS = [0, 1, 55, 56, 63, 64, 65, 111, 112, 128, 1000, 70_000];

Deno.test("hmac: digest equals createHmac for every hash, key length and body length", () => {
  for (const hash of HASHES) {
    for (const keyLength of KEY_LENGTHS) {
      const key = bytes(keyLength, keyLength + 1);
      const hmac = new HmacKey(hash, key);
      for (const bodyLength of BODY_LENGTHS) {
        const body = bytes(bodyLength, bodyLength + 7);
        const expected = createHmac(hash, key).update(body).digest();
        const label = `${hash} key ${keyLength} body ${bodyLength}`;
        assert.deepEqual(Buffer.from(hmac.digest(body)), expected, label);
        // The keyed state is reused: a second digest of the same body is the same.
        assert.deepEqual(Buffer.from(hmac.digest(body)), expected, `${label} (again)`);
      }
    }
  }
});

Deno.test("hmac: string keys and bodies are UTF-8; hex and base64 forms match createHmac", () => {
  const key = "clé-secrète-🔑";
  const body = '{"text":"olá 👋"}';
  for (const hash of HASHES) {
    const hmac = new HmacKey(hash, key);
    assert.equal(hmac.hex(body), createHmac(hash, key).update(body).digest("hex"), hash);
    assert.equal(hmac.base64(body), createHmac(hash, key).update(body).digest("base64"), hash);
  }
});

Deno.test("hmac: verify accepts the right MAC and refuses a changed body, key or length", () => {
  for (const hash of HASHES) {
    const hmac = new HmacKey(hash, "s3cret");
    const mac = createHmac(hash, "s3cret").update("body").digest();
    assert.equal(hmac.verify("body", mac), true, hash);
    assert.equal(hmac.verify("Body", mac), false, `${hash} changed body`);
    assert.equal(new HmacKey(hash, "other").verify("body", mac), false, `${hash} other key`);
    assert.equal(hmac.verify("body", mac.subarray(0, 16)), false, `${hash} truncated MAC`);
    assert.equal(hmac.verify("body", new Uint8Array(0)), false, `${hash} empty MAC`);
  }
});
