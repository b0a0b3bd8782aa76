/**
 * Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the account's auth token, over the
 * webhook URL Twilio called followed by every POST parameter sorted by name, as name + value
 * (a repeated name contributes each of its values, sorted). Compared in constant time.
 *
 * The Twilio SDK's `validateRequest` does the same, but the SDK is far too large for an Edge
 * Function; this module is tested against the examples Twilio publishes.
 */
import { HmacKey } from "./hmac.ts";
import { UnauthorizedError } from "./unauthorized_error.ts";

const keys = new Map<string, HmacKey>();

function keyFor(authToken: string): HmacKey {
  let key = keys.get(authToken);
  if (!key) keys.set(authToken, key = new HmacKey("sha1", authToken));
  return key;
}

/** The text Twilio signs: the URL, then each parameter as name + value, sorted by name. */
export function twilioSignedText(url: string, params: URLSearchParams): string {
  let text = url;
  for (const name of [...new Set(params.keys())].sort()) {
    for (const value of params.getAll(name).sort()) text += name + value;
  }
  return text;
}

/** Computes the signature Twilio sends for a URL and its POST parameters. */
export function twilioSignature(authToken: string, url: string, params: URLSearchParams): string {
  return keyFor(authToken).base64(twilioSignedText(url, params));
}

/**
 * Verifies `X-Twilio-Signature`; throws {@link UnauthorizedError} when it does not match the
 * URL and parameters.
 */
export function verifyTwilioSignature(
  authToken: string,
  header: string,
  url: string,
  params: URLSearchParams,
): void {
  if (!keyFor(authToken).verifyBase64(twilioSignedText(url, params), header.trim())) {
    throw new UnauthorizedError("X-Twilio-Signature does not match the URL and parameters");
  }
}
