/**
 * `HmacKey` (precomputed keyed states) against `node:crypto` `createHmac`, for every hash the
 * webhooks use and keys on each side of the block size.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import {
  decodeHex,
  type HmacHash,
  HmacKey,
  timingSafeEqualBytes,
} from "../supabase/functions/_shared/core/hmac.ts";

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

Deno.test("hmac: verifyHex and verifyBase64 accept the sender's encodings and nothing else", () => {
  for (const hash of HASHES) {
    const hmac = new HmacKey(hash, "twilio-or-waha-secret");
    const mac = createHmac(hash, "twilio-or-waha-secret").update("payload").digest();
    const hex = mac.toString("hex");
    assert.equal(hmac.verifyHex("payload", hex), true, hash);
    assert.equal(hmac.verifyHex("payload", hex.toUpperCase()), true, `${hash} upper case`);
    assert.equal(hmac.verifyHex("payload", hex.slice(2)), false, `${hash} short`);
    assert.equal(hmac.verifyHex("payload", `${hex.slice(0, -1)}g`), false, `${hash} not hex`);
    assert.equal(hmac.verifyHex("payloaD", hex), false, `${hash} other body`);
    const base64 = mac.toString("base64");
    assert.equal(hmac.verifyBase64("payload", base64), true, hash);
    assert.equal(
      hmac.verifyBase64("payload", base64.replace(/=+$/, "")),
      false,
      `${hash} unpadded`,
    );
    assert.equal(hmac.verifyBase64("payload", ` ${base64}`), false, `${hash} not canonical`);
    assert.equal(hmac.verifyBase64("payloaD", base64), false, `${hash} other body`);
  }
});

Deno.test("hmac: decodeHex matches Buffer for every byte and refuses odd, empty and non-hex text", () => {
  const all = new Uint8Array(256).map((_, i) => i);
  const hex = Buffer.from(all).toString("hex");
  assert.deepEqual(decodeHex(hex), all);
  assert.deepEqual(decodeHex(hex.toUpperCase()), all);
  for (const bad of ["", "a", "abc", "zz", "0g", "é0", "\u0660\u0660", " 00", "00 "]) {
    assert.equal(decodeHex(bad), undefined, JSON.stringify(bad));
  }
});

Deno.test("hmac: timingSafeEqualBytes compares every byte and refuses other lengths", () => {
  const a = new Uint8Array([1, 2, 3, 4]);
  assert.equal(timingSafeEqualBytes(a, new Uint8Array([1, 2, 3, 4])), true);
  assert.equal(timingSafeEqualBytes(new Uint8Array(0), new Uint8Array(0)), true);
  for (let i = 0; i < 4; i++) {
    const b = a.slice();
    b[i] ^= 0x80;
    assert.equal(timingSafeEqualBytes(a, b), false, `byte ${i}`);
  }
  assert.equal(timingSafeEqualBytes(a, a.subarray(0, 3)), false);
});
