/**
 * The message formats, in detection order. To add a gateway, write one module exporting a
 * {@link MessageFormat}, list it here, and add its example payloads to the tests. Choosing the
 * format follows core/formats/registry.ts.
 */
import { FormatRegistry } from "../../core/formats/registry.ts";
import type { DeliveryInput, MessageFormat, MessageItems, ParsedMessages } from "./delivery.ts";
import { evolutionFormat } from "./evolution.ts";
import { metaFormat } from "./meta.ts";
import { twilioFormat } from "./twilio.ts";
import { wahaFormat } from "./waha.ts";

/** Every message format, most specific first. */
export const MESSAGE_FORMATS: readonly MessageFormat[] = [
  metaFormat,
  twilioFormat,
  wahaFormat,
  evolutionFormat,
];

/** Names accepted by `?format=` on the message webhook. */
export const MESSAGE_FORMAT_NAMES: readonly string[] = MESSAGE_FORMATS.map((f) => f.name);

/** The registry of {@link MESSAGE_FORMATS}, or of the formats given. */
export function messageRegistry(
  formats: readonly MessageFormat[] = MESSAGE_FORMATS,
): FormatRegistry<DeliveryInput, MessageItems> {
  return new FormatRegistry(formats);
}

const DEFAULT_REGISTRY = messageRegistry();

/**
 * Chooses the format of a delivery (forced or detected) and parses it. Throws
 * `UnknownFormatError` or `PayloadFormatError`.
 */
export function parseMessageDelivery(
  input: DeliveryInput,
  receivedAt: number,
  forced?: string | null,
  registry: FormatRegistry<DeliveryInput, MessageItems> = DEFAULT_REGISTRY,
): ParsedMessages {
  return registry.parse(input, forced, receivedAt);
}
