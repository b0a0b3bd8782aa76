/**
 * The gateway formats the webhook understands, in detection order. To add a format, write one
 * module exporting a {@link WebhookFormat} (detect + parse into raw membership changes), list it
 * here, and add its example payloads to the tests.
 */
import { baileysFormat } from "./baileys.ts";
import {
  isObject,
  type ParsedDelivery,
  PayloadFormatError,
  type WebhookFormat,
} from "./delivery.ts";
import { evolutionFormat } from "./evolution.ts";
import { genericFormat } from "./generic.ts";
import { metaFormat } from "./meta.ts";
import { wahaFormat } from "./waha.ts";
import { wwebjsFormat } from "./wwebjs.ts";

/** Every supported format, most specific first. */
export const FORMATS: readonly WebhookFormat[] = [
  metaFormat,
  wahaFormat,
  evolutionFormat,
  wwebjsFormat,
  baileysFormat,
  genericFormat,
];

/** Names accepted by `?format=`. */
export const FORMAT_NAMES: readonly string[] = FORMATS.map((f) => f.name);

/** Raised when `?format=` names no known format, or no format recognises the payload. */
export class UnknownFormatError extends Error {
  constructor(message: string) {
    super(`${message}; supported formats: ${FORMAT_NAMES.join(", ")}`);
    this.name = "UnknownFormatError";
  }
}

/**
 * Detects the payload's format (or uses the forced one) and parses it. Throws
 * {@link UnknownFormatError} or {@link PayloadFormatError}.
 */
export function parseDelivery(json: unknown, forced?: string | null): ParsedDelivery {
  let format: WebhookFormat | undefined;
  if (forced) {
    format = FORMATS.find((f) => f.name === forced);
    if (!format) throw new UnknownFormatError(`unknown format "${forced.slice(0, 32)}"`);
  } else {
    format = FORMATS.find((f) => f.detect(json));
    if (!format) {
      throw new UnknownFormatError(
        isObject(json) ? "payload matches no supported format" : "payload must be a JSON object",
      );
    }
  }
  const parsed = format.parse(json);
  if (parsed.kind === "changes" && parsed.changes.length === 0) {
    throw new PayloadFormatError([{ path: "(root)", message: "no participants" }]);
  }
  return parsed;
}
