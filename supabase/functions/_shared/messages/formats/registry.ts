/**
 * The message formats, in detection order. To add a gateway, write one module exporting a
 * `MessageFormat` (delivery.ts), list it here, and add its example payloads to the tests. Choosing the
 * format follows core/formats/registry.ts.
 */
import { FormatRegistry } from "../../core/formats/registry.ts";
import type { DeliveryInput, MessageItems } from "./delivery.ts";
import { evolutionFormat } from "./evolution.ts";
import { metaFormat } from "./meta.ts";
import { twilioFormat } from "./twilio.ts";
import { wahaFormat } from "./waha.ts";

/** Every message format, most specific first; its `names` are those `?format=` accepts. */
export const MESSAGE_REGISTRY: FormatRegistry<DeliveryInput, MessageItems> = new FormatRegistry<
  DeliveryInput,
  MessageItems
>([metaFormat, twilioFormat, wahaFormat, evolutionFormat]);

/** Chooses the format (forced or detected) and parses the delivery; see {@link FormatRegistry}. */
export const parseMessageDelivery = (
  input: DeliveryInput,
  receivedAt: number,
  forced?: string | null,
): ReturnType<typeof MESSAGE_REGISTRY.parse> => MESSAGE_REGISTRY.parse(input, forced, receivedAt);
