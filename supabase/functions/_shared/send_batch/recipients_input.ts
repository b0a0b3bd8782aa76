/**
 * Recipient lists as uploaded (a JSON array or a CSV file) turned into the rows of a batch:
 * phones normalised to E.164, the same person twice kept once, invalid rows reported.
 *
 * Uploads are read as they stream in (up to `SEND_MAX_RECIPIENTS` rows, 100,000 by default): a
 * JSON body's recipients are cut out of the text one element at a time and parsed alone, a CSV
 * body is parsed a block of whole records at a time, and accepted rows are kept only as the JSON
 * text of their insert chunks ({@link INSERT_CHUNK_ROWS} rows each). Memory stays near the size of
 * the upload, never the object tree of a whole parsed body.
 */
import { parse as parseCsv } from "csv-parse/sync";
import { z } from "zod";
import { BODY_PATH, HttpError, MalformedJsonError } from "../core/http.ts";
import { cleanJson, cleanText } from "../core/sanitize.ts";
import { normalizePhone } from "../whatsapp/identity.ts";
import { DEFAULT_MAX_RECIPIENTS } from "./config.ts";

/** Accepted rows per insert statement (`jsonb_to_recordset` of one chunk). */
export const INSERT_CHUNK_ROWS = 5_000;

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
  /** How many rows were accepted. */
  accepted: number;
  /**
   * The accepted rows as JSON arrays of `{ row, phone, name, variables }`, at most
   * {@link INSERT_CHUNK_ROWS} per chunk, in upload order.
   */
  chunks: string[];
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
type RecipientInput = z.output<typeof RecipientInputSchema>;

/**
 * {@link RecipientInputSchema} without its allocations for a row that passes it (most rows: a
 * 100,000-row upload must not churn the heap); undefined sends the row through the schema, for
 * its issues.
 */
function quickInput(raw: RawRecipient): RecipientInput | undefined {
  const { phone, name, variables } = raw;
  if (typeof phone !== "string" && typeof phone !== "number") return undefined;
  if (name != null && (typeof name !== "string" || name.length > 256)) return undefined;
  let vars: Record<string, string | null> | null | undefined = variables as null | undefined;
  if (variables != null) {
    if (typeof variables !== "object" || Array.isArray(variables)) return undefined;
    vars = {};
    for (const [key, value] of Object.entries(variables)) {
      if (value === null || typeof value === "string") vars[key] = value;
      else if (typeof value === "number" || typeof value === "boolean") vars[key] = String(value);
      else return undefined;
    }
  }
  return { phone: String(phone), name: name as string | null | undefined, variables: vars };
}

/**
 * Takes rows one at a time: checks and normalises each, drops repeated phones, and keeps accepted
 * rows as insert chunks. Refuses the row past `maxRecipients` at once.
 */
export class RecipientCollector {
  readonly #max: number;
  readonly #paths: RowPaths;
  readonly #seen = new Set<string>();
  readonly #chunks: string[] = [];
  #chunk: string[] = [];
  #rows = 0;
  #accepted = 0;
  #duplicates = 0;
  readonly #rejected: RejectedRow[] = [];

  constructor(maxRecipients: number = DEFAULT_MAX_RECIPIENTS, paths: RowPaths = JSON_ROWS) {
    this.#max = maxRecipients;
    this.#paths = paths;
  }

  /** Rows taken so far. */
  get rows(): number {
    return this.#rows;
  }

  /** Takes the next row of the upload. */
  add(raw: RawRecipient): void {
    const index = this.#rows++;
    if (this.#rows > this.#max) {
      throw new InvalidRecipientListError(
        "too_many_recipients",
        `a batch has at most ${this.#max} recipients; the upload has more rows`,
        this.#paths.list,
      );
    }
    const row = index + 1;
    const quick = raw !== null && typeof raw === "object" ? quickInput(raw) : undefined;
    const parsed = quick
      ? { success: true as const, data: quick }
      : RecipientInputSchema.safeParse(raw);
    if (!parsed.success) {
      const value = typeof raw?.phone === "string" ? raw.phone : JSON.stringify(raw?.phone ?? null);
      const issue = parsed.error.issues[0];
      this.#rejected.push({
        row,
        path: [this.#paths.row(index), ...(issue?.path ?? []).map(String)].join("."),
        value,
        reason: issue?.message ?? "invalid recipient",
      });
      return;
    }
    let phone: string;
    try {
      phone = normalizePhone(parsed.data.phone);
    } catch (error) {
      this.#rejected.push({
        row,
        path: `${this.#paths.row(index)}.phone`,
        value: parsed.data.phone,
        reason: (error as Error).message,
      });
      return;
    }
    if (this.#seen.has(phone)) {
      this.#duplicates++;
      return;
    }
    this.#seen.add(phone);
    const variables: Record<string, string> = {};
    for (const [key, value] of Object.entries(parsed.data.variables ?? {})) {
      if (value !== null) variables[key] = value;
    }
    this.#accepted++;
    this.#chunk.push(
      JSON.stringify({ row, phone, name: parsed.data.name || null, variables }),
    );
    if (this.#chunk.length >= INSERT_CHUNK_ROWS) this.#flush();
  }

  #flush(): void {
    if (this.#chunk.length === 0) return;
    this.#chunks.push(`[${this.#chunk.join(",")}]`);
    this.#chunk = [];
  }

  /** The list read; refuses an upload without rows. */
  finish(): RecipientList {
    if (this.#rows === 0) {
      throw new InvalidRecipientListError("no_recipients", "no recipients given", this.#paths.list);
    }
    this.#flush();
    return {
      accepted: this.#accepted,
      chunks: this.#chunks,
      duplicatesRemoved: this.#duplicates,
      rejected: this.#rejected,
    };
  }
}

/** A JSON recipient as given: a bare value is taken as the phone. */
export function rawRecipient(value: unknown): RawRecipient {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? value as RawRecipient
    : { phone: value };
}

/** Normalises raw rows (from JSON, or CSV with its paths) into a {@link RecipientList}. */
export function readRecipients(
  rows: readonly RawRecipient[],
  maxRecipients: number = DEFAULT_MAX_RECIPIENTS,
  paths: RowPaths = JSON_ROWS,
): RecipientList {
  const collector = new RecipientCollector(maxRecipients, paths);
  for (const raw of rows) collector.add(raw);
  return collector.finish();
}

/** Recipients rows of parsed JSON cut from a stream; `fields` holds the other top-level keys. */
export interface ScannedJsonBody {
  /** Top-level fields other than an array `recipients`, parsed and cleaned. */
  fields: Record<string, unknown>;
  /** Whether `recipients` was an array (its elements went to `onRecipient`). */
  recipientsArray: boolean;
  /** The body when it is not a JSON object (read whole, for the usual refusal). */
  notAnObject?: unknown;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const SCALAR_END = new Set([0x20, 0x09, 0x0a, 0x0d, 0x2c, 0x5d, 0x7d]); // ws , ] }

type ScanState =
  | "start"
  | "key-or-end"
  | "key"
  | "colon"
  | "value"
  | "after-value"
  | "first-element"
  | "element"
  | "after-element"
  | "end"
  | "whole";

/**
 * Reads a JSON object body as it streams in: each element of its top-level `recipients` array is
 * cut out and handed to `onRecipient` on its own (parsed and cleaned); other top-level values are
 * parsed whole. Malformed JSON anywhere is a {@link MalformedJsonError}.
 */
export async function scanJsonBody(
  text: AsyncIterable<string>,
  onRecipient: (value: unknown) => void,
): Promise<ScannedJsonBody> {
  const fields: Record<string, unknown> = {};
  let recipientsArray = false;
  let state = "start" as ScanState;
  let key = "";
  // The value being cut out: its text so far (across chunks) and how it ends.
  let parts: string[] = [];
  let kind: "composite" | "string" | "scalar" | undefined;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let capturing: "key" | "field" | "element" | undefined;
  const whole: string[] = [];
  const malformed = (why: string) => new MalformedJsonError(new SyntaxError(why));
  const parse = (raw: string) => {
    try {
      return cleanJson(JSON.parse(raw));
    } catch (cause) {
      throw new MalformedJsonError(cause);
    }
  };
  const complete = (raw: string) => {
    const target = capturing;
    capturing = undefined;
    kind = undefined;
    parts = [];
    if (target === "key") {
      key = parse(raw) as string;
      state = "colon";
    } else if (target === "field") {
      fields[key] = parse(raw);
      state = "after-value";
    } else {
      onRecipient(parse(raw));
      state = "after-element";
    }
  };
  for await (const chunk of text) {
    if (state === "whole") {
      whole.push(chunk);
      continue;
    }
    let start = 0;
    let i = 0;
    /** Starts cutting out a value at `i` and reads its first character. */
    const begin = (c: number, target: "key" | "field" | "element") => {
      capturing = target;
      start = i;
      inString = false;
      escaped = false;
      if (c === 0x7b || c === 0x5b) { // { [
        kind = "composite";
        depth = 1;
        i++;
      } else if (c === 0x22) { // "
        kind = "string";
        i++;
      } else if (c === 0x2d || (c >= 0x30 && c <= 0x39) || c === 0x74 || c === 0x66 || c === 0x6e) {
        kind = "scalar"; // - digits true false null
      } else {
        throw malformed("unexpected character at a value");
      }
    };
    /** Ends the value being cut out after character `i`. */
    const endAt = (end: number) => {
      parts.push(chunk.slice(start, end));
      i = end;
      complete(parts.join(""));
    };
    while (i < chunk.length) {
      const c = chunk.charCodeAt(i);
      if (capturing) {
        if (kind === "scalar") {
          // The character after a scalar ends it and is read again in the next state.
          if (SCALAR_END.has(c)) endAt(i);
          else i++;
          continue;
        }
        if (kind === "string" || inString) {
          if (escaped) escaped = false;
          else if (c === 0x5c) escaped = true;
          else if (c === 0x22) {
            if (kind === "string") {
              endAt(i + 1);
              continue;
            }
            inString = false;
          }
          i++;
          continue;
        }
        // A composite value, outside its strings.
        if (c === 0x22) inString = true;
        else if (c === 0x7b || c === 0x5b) depth++;
        else if ((c === 0x7d || c === 0x5d) && --depth === 0) {
          endAt(i + 1);
          continue;
        }
        i++;
        continue;
      }
      if (WS.has(c)) {
        i++;
        continue;
      }
      switch (state) {
        case "start":
          if (c !== 0x7b) {
            state = "whole";
            whole.push(chunk.slice(i));
            i = chunk.length;
            continue;
          }
          state = "key-or-end";
          break;
        case "key-or-end":
          if (c === 0x7d) {
            state = "end";
            break;
          }
        // falls through: a key
        case "key":
          if (c !== 0x22) throw malformed("expected a key");
          begin(c, "key");
          continue;
        case "colon":
          if (c !== 0x3a) throw malformed("expected ':'");
          state = "value";
          break;
        case "value":
          if (key === "recipients" && c === 0x5b) {
            recipientsArray = true;
            delete fields.recipients;
            state = "first-element";
            break;
          }
          if (key === "recipients") recipientsArray = false;
          begin(c, "field");
          continue;
        case "after-value":
          if (c === 0x2c) state = "key";
          else if (c === 0x7d) state = "end";
          else throw malformed("expected ',' or '}'");
          break;
        case "first-element":
          if (c === 0x5d) {
            state = "after-value";
            break;
          }
        // falls through: an element
        case "element":
          begin(c, "element");
          continue;
        case "after-element":
          if (c === 0x2c) state = "element";
          else if (c === 0x5d) state = "after-value";
          else throw malformed("expected ',' or ']'");
          break;
        case "end":
          throw malformed("unexpected text after the body");
      }
      i++;
    }
    if (capturing) {
      parts.push(chunk.slice(start));
    }
  }
  if (capturing && kind === "scalar") complete(parts.join(""));
  if (state === "whole") {
    const body = whole.join("");
    try {
      return { fields, recipientsArray: false, notAnObject: cleanJson(JSON.parse(body)) };
    } catch (cause) {
      throw new MalformedJsonError(cause);
    }
  }
  if (state === "start") return { fields, recipientsArray: false };
  if (state !== "end" || capturing) throw malformed("the body ends early");
  return { fields, recipientsArray };
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

/** Text of whole CSV records, a block at a time: never cuts a quoted field. */
async function* csvBlocks(text: AsyncIterable<string>, blockChars = 256 * 1024) {
  let buffer = "";
  let scanned = 0;
  let quoted = false;
  let lastBreak = -1;
  for await (const chunk of text) {
    buffer += chunk;
    for (; scanned < buffer.length; scanned++) {
      const c = buffer.charCodeAt(scanned);
      if (c === 0x22) quoted = !quoted;
      else if (c === 0x0a && !quoted) lastBreak = scanned;
    }
    if (lastBreak >= 0 && lastBreak + 1 >= blockChars) {
      yield buffer.slice(0, lastBreak + 1);
      buffer = buffer.slice(lastBreak + 1);
      scanned = buffer.length;
      lastBreak = -1;
    }
  }
  if (buffer !== "") yield buffer;
}

/**
 * Reads a CSV upload: a header row with a `phone` column (case-insensitive; `name` is the name),
 * every other column becomes a variable. Text is cleaned by the shared sanitiser.
 */
export async function readRecipientsCsvStream(
  text: AsyncIterable<string>,
  maxRecipients: number = DEFAULT_MAX_RECIPIENTS,
): Promise<RecipientList> {
  const collector = new RecipientCollector(maxRecipients, CSV_ROWS);
  let columns: string[] | undefined;
  let delimiter = ",";
  let phoneColumn = -1;
  let nameColumn = -1;
  let first = true;
  for await (const raw of csvBlocks(text)) {
    const block = cleanText(raw);
    if (first) {
      if (block.trim() === "") continue;
      delimiter = delimiterOf(block);
      first = false;
    }
    let records: string[][];
    try {
      records = parseCsv(block, {
        bom: true,
        delimiter,
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
    if (!columns) {
      const header = records.shift();
      if (!header) continue;
      columns = header.map((name) => name.trim());
      phoneColumn = columns.findIndex((name) => name.toLowerCase() === "phone");
      if (phoneColumn === -1) {
        throw new InvalidRecipientListError(
          "missing_phone_column",
          `the header row has no phone column (columns: ${columns.join(", ").slice(0, 200)})`,
          "header",
        );
      }
      nameColumn = columns.findIndex((name) => name.toLowerCase() === "name");
    }
    const cols = columns;
    for (const record of records) {
      const variables: Record<string, string> = {};
      cols.forEach((column, i) => {
        if (i !== phoneColumn && column !== "" && record[i] !== undefined) {
          variables[column] = record[i];
        }
      });
      collector.add({
        phone: record[phoneColumn] ?? "",
        name: nameColumn === -1 ? undefined : record[nameColumn] || undefined,
        variables,
      });
    }
  }
  if (first) {
    throw new InvalidRecipientListError("empty_file", "the CSV file is empty", BODY_PATH);
  }
  if (collector.rows === 0) {
    throw new InvalidRecipientListError(
      "no_recipients",
      "the CSV file has a header but no rows",
      BODY_PATH,
    );
  }
  return collector.finish();
}

/** {@link readRecipientsCsvStream} over a whole text. */
export function readRecipientsCsv(
  text: string,
  maxRecipients: number = DEFAULT_MAX_RECIPIENTS,
): Promise<RecipientList> {
  return readRecipientsCsvStream(
    (async function* () {
      yield text;
    })(),
    maxRecipients,
  );
}
