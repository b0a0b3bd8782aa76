/**
 * The request bodies of whatsapp-send-batch's routes, read and checked: a create is JSON
 * `{ message, recipients }` or a CSV upload with `?message=` / `?template=`, each streamed as it
 * arrives (see recipients_input.ts) up to the configured recipient and byte limits; a retry is
 * `{ unknown?: [recipient_id] }`. Every refusal is a 4xx naming its paths; nothing is written.
 */
import { z } from "zod";
import { BODY_PATH, HttpError, MalformedJsonError, readBodyLimited } from "../core/http.ts";
import { zodIssues } from "../core/formats/parse.ts";
import { cleanJson, cleanParam } from "../core/sanitize.ts";
import type { SendBatchConfig } from "./config.ts";
import { type BatchMessage, MessageInputSchema, TemplateMessageSchema } from "./message.ts";
import {
  rawRecipient,
  readRecipientsCsvStream,
  RecipientCollector,
  type RecipientList,
  scanJsonBody,
} from "./recipients_input.ts";

/** Largest body of the other POST routes (retry); a create's is `config.maxUploadBytes`. */
export const MAX_UPLOAD_BYTES = 5 * 1024 * 1024;
/** A batch or recipient id, or a user id. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A create request, read. */
export interface CreateInput {
  message: BatchMessage;
  recipients: RecipientList;
  /** The owner a service-role caller names. */
  owner?: string;
}

const CreateSchema = z.object({
  message: MessageInputSchema,
  // Its rows are streamed to a RecipientCollector, each checked on its own (rejected, not fatal).
  recipients: z.array(z.unknown()),
  owner: z.string().regex(UUID).optional(),
});

const RetrySchema = z.object({ unknown: z.array(z.string().regex(UUID)).max(10_000).default([]) });

/** The issues of a refusal, each with its path (`(root)` for the body as a whole). */
function issuesOf(error: z.ZodError) {
  return zodIssues(error.issues);
}

/** A CSV upload's message comes from the query: its issues name the query parameters. */
function queryIssuesOf(error: z.ZodError, template: boolean) {
  return zodIssues(error.issues).map(({ path, message }) => ({
    path: !template ? "message" : path.includes("language") ? "language" : "template",
    message,
  }));
}

async function readJson(request: Request): Promise<unknown> {
  const body = await readBodyLimited(request, MAX_UPLOAD_BYTES);
  if (body.byteLength === 0) return {};
  try {
    // NULs and lone surrogates cannot be stored: cleaned here, once, for every field.
    return cleanJson(JSON.parse(new TextDecoder().decode(body)));
  } catch (cause) {
    throw new MalformedJsonError(cause);
  }
}

/** 413 naming the body: the upload is larger than this route takes. */
function uploadTooLarge(limit: number): HttpError {
  return new HttpError(413, "payload_too_large", `request body is larger than ${limit} bytes`, {
    details: [{ path: BODY_PATH, message: `at most ${limit} bytes` }],
  });
}

/**
 * The body as text, decoded as it streams in, refused past `limit` bytes (a declared length at
 * once). Nothing of it is kept here: the readers keep what they need.
 */
async function* bodyText(request: Request, limit: number): AsyncGenerator<string> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^[0-9]+$/.test(declared) && Number(declared) > limit) {
    throw uploadTooLarge(limit);
  }
  const stream = request.body;
  if (!stream) return;
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) throw uploadTooLarge(limit);
      const text = decoder.decode(value, { stream: true });
      if (text !== "") yield text;
    }
    const rest = decoder.decode();
    if (rest !== "") yield rest;
  } finally {
    // Stopped early (a refusal): the rest of the upload is not read.
    await reader.cancel().catch(() => {});
  }
}

function invalid(error: z.ZodError, what: string): HttpError {
  return new HttpError(400, "invalid_payload", `request body does not match ${what}`, {
    details: issuesOf(error),
  });
}

/**
 * Reads a create request: JSON `{ message, recipients }` or a CSV upload with `?message=`, each
 * streamed (see recipients_input.ts), up to `config.maxRecipients` rows.
 */
export async function readCreate(
  request: Request,
  url: URL,
  config: SendBatchConfig,
): Promise<CreateInput> {
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  if (type.startsWith("text/csv") || type.startsWith("application/csv")) {
    // Query parameters and CSV cells are cleaned like JSON fields: one sanitiser for all.
    const query = url.searchParams;
    const template = cleanParam(query, "template");
    const message = template
      ? TemplateMessageSchema.safeParse({
        template: { name: template, language: cleanParam(query, "language") ?? "en" },
      })
      : MessageInputSchema.safeParse(cleanParam(query, "message") ?? "");
    if (!message.success) {
      throw new HttpError(
        400,
        "invalid_message",
        "give the message as ?message=<text> or ?template=<name>&language=<code>",
        { details: queryIssuesOf(message.error, Boolean(template)) },
      );
    }
    const recipients = await readRecipientsCsvStream(
      bodyText(request, config.maxUploadBytes),
      config.maxRecipients,
    );
    return { message: message.data, recipients, owner: cleanParam(query, "owner") ?? undefined };
  }
  const collector = new RecipientCollector(config.maxRecipients);
  const scanned = await scanJsonBody(
    bodyText(request, config.maxUploadBytes),
    (value) => collector.add(rawRecipient(value)),
  );
  const body = "notAnObject" in scanned
    ? scanned.notAnObject
    : scanned.recipientsArray
    ? { ...scanned.fields, recipients: [] }
    : scanned.fields;
  const parsed = CreateSchema.safeParse(body);
  if (!parsed.success) {
    throw invalid(parsed.error, "{ message, recipients: [{ phone, name?, variables? }] }");
  }
  return { message: parsed.data.message, recipients: collector.finish(), owner: parsed.data.owner };
}

/** Reads a retry request: the unknown recipients the user lists for sending again. */
export async function readRetry(request: Request): Promise<string[]> {
  const parsed = RetrySchema.safeParse(await readJson(request));
  if (!parsed.success) throw invalid(parsed.error, "{ unknown?: [recipient_id] }");
  return parsed.data.unknown;
}
