/**
 * The message of a batch (a text or a Cloud API template) and its rendering for one recipient:
 * `{{name}}` and `{{<variable>}}` placeholders are filled from the recipient's fields.
 */
import { z } from "zod";

/** A stored batch message. */
export type BatchMessage =
  | { type: "text"; text: string }
  | {
    type: "template";
    template: { name: string; language: string; components: Record<string, unknown>[] };
  };

const TemplateSchema = z.object({
  name: z.string().trim().min(1).max(512),
  language: z.union([
    z.string().trim().min(2).max(16),
    z.object({ code: z.string().trim().min(2).max(16) }).transform((l) => l.code),
  ]),
  components: z.array(z.record(z.string(), z.unknown())).max(20).default([]),
});

/** A template message: `{ template: { name, language, components? } }`. */
export const TemplateMessageSchema = z.object({ template: TemplateSchema }).transform((
  m,
): BatchMessage => ({ type: "template", template: m.template }));

/** What the create endpoint accepts as `message`: a string, `{ text }` or `{ template }`. */
export const MessageInputSchema = z.union([
  z.string().trim().min(1).max(4096).transform((text): BatchMessage => ({ type: "text", text })),
  z.object({ text: z.string().trim().min(1).max(4096) }).transform((m): BatchMessage => ({
    type: "text",
    text: m.text,
  })),
  TemplateMessageSchema,
]);

/** The fields a placeholder may name. */
export type RecipientFields = {
  phone: string;
  name?: string | null;
  variables: Record<string, string>;
};

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;

/** Replaces `{{field}}` with the recipient's value (unknown placeholders become empty). */
export function fillPlaceholders(text: string, recipient: RecipientFields): string {
  return text.replace(PLACEHOLDER, (_, field: string) => {
    if (field === "name") return recipient.name ?? recipient.variables.name ?? "";
    if (field === "phone") return recipient.phone;
    return recipient.variables[field] ?? "";
  });
}

function fillDeep(value: unknown, recipient: RecipientFields): unknown {
  if (typeof value === "string") return fillPlaceholders(value, recipient);
  if (Array.isArray(value)) return value.map((item) => fillDeep(item, recipient));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, fillDeep(item, recipient)]),
    );
  }
  return value;
}

/** The message as sent to one recipient. */
export function renderMessage(message: BatchMessage, recipient: RecipientFields): BatchMessage {
  if (message.type === "text") {
    return { type: "text", text: fillPlaceholders(message.text, recipient) };
  }
  return {
    type: "template",
    template: {
      ...message.template,
      components: fillDeep(message.template.components, recipient) as Record<string, unknown>[],
    },
  };
}
