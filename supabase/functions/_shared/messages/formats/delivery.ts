/**
 * What a message format parser returns: one result per message or status in the payload, each
 * already normalised (or rejected with its reason), or the reason a valid delivery is ignored.
 * A format module only knows its gateway's shapes; identities go through `normalize.ts`, and the
 * helpers building items are in `items.ts`.
 */
import type { Format, IgnoredDelivery } from "../../core/formats/format.ts";
import type { FormInput } from "../../core/webhook/body.ts";
import type { MessageEvent } from "../event.ts";

/** The request as a format sees it: the JSON body, or the form fields of a form post. */
export type DeliveryInput = { kind: "json"; json: unknown } | FormInput;

/** One message or status of a payload: its event, or why it cannot be stored. */
export type ItemResult =
  | { ok: true; path: string; event: MessageEvent }
  | { ok: false; path: string; reason: string; ignored?: boolean };

/** The messages and statuses of a delivery, each normalised or rejected. */
export interface MessageItems {
  kind: "items";
  format: string;
  items: ItemResult[];
}

/** A parsed delivery: items, or ignored. */
export type ParsedMessages = MessageItems | IgnoredDelivery;

/** One message gateway format: recognises and parses a JSON body or a form post. */
export type MessageFormat = Format<DeliveryInput, MessageItems>;
