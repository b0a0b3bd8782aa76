/**
 * Recipient lists as uploaded (a JSON array or a CSV file) turned into the rows of a batch:
 * phones normalised to E.164, the same person twice kept once, invalid rows reported.
 */
import { parse as parseCsv } from "csv-parse/sync";
import { z } from "zod";
import { BODY_PATH, HttpError } from "../core/http.ts";
import { normalizePhone } from "../whatsapp/identity.ts";
import { MAX_RECIPIENTS } from "./config.ts";

/** A valid, normalised recipient. */
export interface RecipientRow {
  /** 1-based position in the upload. */
  row: number;
  phone: string;
  name?: string;
  variables: Record<string, string>;
}

/** A row that was not accepted. */
export interface RejectedRow {
  row: number;
  /** Where the bad value sits: `recipients.<index>.phone` (JSON) or `rows.<row>.phone` (CSV). */
  path: string;
  value: string;
  reason: string;
}

/** The outcome of reading an upload. */
export interface RecipientList {
  accepted: RecipientRow[];
  duplicatesRemoved: number;
  rejected: RejectedRow[];
}

/** 400: the upload has no rows, too many rows, or no phone column; `path` names where. */
export class InvalidRecipientListError extends HttpError {
  constructor(code: string, message: string, path: string) {
    super(400, code, message, { details: [{ path, message }] });
    this.name = "InvalidRecipientListError";
  }
}

/** Where an upload's rows sit, for the paths of refusals and rejected rows. */
interface RowPaths {
  /** The list as a whole. */
  list: string;
  /** One row, by its 0-based index. */
  row(index: number): string;
}

const JSON_ROWS: RowPaths = { list: "recipients", row: (index) => `recipients.${index}` };
const CSV_ROWS: RowPaths = { list: BODY_PATH, row: (index) => `rows.${index + 1}` };

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);

/** One JSON recipient; fields other than these are ignored. */
export const RecipientInputSchema = z.object({
  phone: z.union([z.string(), z.number()]).transform(String),
  name: z.string().max(256).optional().nullable(),
  variables: z.record(z.string(), scalar.nullable()).optional().nullable(),
});

type RawRecipient = { phone: unknown; name?: unknown; variables?: unknown };

function tooMany(count: number, path: string): never {
  throw new InvalidRecipientListError(
    "too_many_recipients",
    `a batch has at most ${MAX_RECIPIENTS} recipients; the upload has ${count} rows`,
    path,
  );
}

/** Normalises raw rows (from JSON, or CSV with its paths) into a {@link RecipientList}. */
export function readRecipients(
  rows: readonly RawRecipient[],
  paths: RowPaths = JSON_ROWS,
): RecipientList {
  if (rows.length === 0) {
    throw new InvalidRecipientListError("no_recipients", "no recipients given", paths.list);
  }
  if (rows.length > MAX_RECIPIENTS) tooMany(rows.length, paths.list);
  const accepted: RecipientRow[] = [];
  const rejected: RejectedRow[] = [];
  const seen = new Set<string>();
  let duplicatesRemoved = 0;
  rows.forEach((raw, index) => {
    const row = index + 1;
    const parsed = RecipientInputSchema.safeParse(raw);
    if (!parsed.success) {
      const value = typeof raw?.phone === "string" ? raw.phone : JSON.stringify(raw?.phone ?? null);
      const issue = parsed.error.issues[0];
      rejected.push({
        row,
        path: [paths.row(index), ...(issue?.path ?? []).map(String)].join("."),
        value,
        reason: issue?.message ?? "invalid recipient",
      });
      return;
    }
    let phone: string;
    try {
      phone = normalizePhone(parsed.data.phone);
    } catch (error) {
      rejected.push({
        row,
        path: `${paths.row(index)}.phone`,
        value: parsed.data.phone,
        reason: (error as Error).message,
      });
      return;
    }
    if (seen.has(phone)) {
      duplicatesRemoved++;
      return;
    }
    seen.add(phone);
    const variables: Record<string, string> = {};
    for (const [key, value] of Object.entries(parsed.data.variables ?? {})) {
      if (value !== null) variables[key] = value;
    }
    const name = parsed.data.name ?? undefined;
    accepted.push({ row, phone, name: name || undefined, variables });
  });
  return { accepted, duplicatesRemoved, rejected };
}

/**
 * The separator of a CSV export: spreadsheets write commas, semicolons (European locales) or
 * tabs; the one the header row uses most is taken.
 */
function delimiterOf(text: string): string {
  const end = text.indexOf("\n");
  const header = end === -1 ? text : text.slice(0, end);
  let best = ",";
  let most = 0;
  for (const candidate of [",", ";", "\t"]) {
    const count = header.split(candidate).length - 1;
    if (count > most) [best, most] = [candidate, count];
  }
  return best;
}

/**
 * Reads a CSV upload: a header row with a `phone` column (case-insensitive; `name` is the name),
 * every other column becomes a variable.
 */
export function readRecipientsCsv(text: string): RecipientList {
  if (text.trim() === "") {
    throw new InvalidRecipientListError("empty_file", "the CSV file is empty", BODY_PATH);
  }
  let records: string[][];
  try {
    records = parseCsv(text, {
      bom: true,
      delimiter: delimiterOf(text),
      skip_empty_lines: true,
      relax_column_count: true,
      trim: true,
    }) as string[][];
  } catch (error) {
    throw new InvalidRecipientListError(
      "malformed_csv",
      `the CSV file cannot be read: ${(error as Error).message.split("\n")[0]}`,
      BODY_PATH,
    );
  }
  const [header, ...data] = records;
  const columns = header.map((name) => name.trim());
  const phoneColumn = columns.findIndex((name) => name.toLowerCase() === "phone");
  if (phoneColumn === -1) {
    throw new InvalidRecipientListError(
      "missing_phone_column",
      `the header row has no phone column (columns: ${columns.join(", ").slice(0, 200)})`,
      "header",
    );
  }
  if (data.length === 0) {
    throw new InvalidRecipientListError(
      "no_recipients",
      "the CSV file has a header but no rows",
      BODY_PATH,
    );
  }
  if (data.length > MAX_RECIPIENTS) tooMany(data.length, BODY_PATH);
  const nameColumn = columns.findIndex((name) => name.toLowerCase() === "name");
  return readRecipients(
    data.map((record) => {
      const variables: Record<string, string> = {};
      columns.forEach((column, i) => {
        if (i !== phoneColumn && column !== "" && record[i] !== undefined) {
          variables[column] = record[i];
        }
      });
      return {
        phone: record[phoneColumn] ?? "",
        name: nameColumn === -1 ? undefined : record[nameColumn] || undefined,
        variables,
      };
    }),
    CSV_ROWS,
  );
}
