/**
 * Structured JSON logging with masking of personal data.
 *
 * Log lines never carry secrets or full phone numbers: callers pass identities through
 * {@link maskIdentity} and the logger drops any field whose name looks like a credential.
 */

/** Severity of a log line, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_FIELD = /secret|token|password|authorization|signature|apikey|key$/i;
// Seven or more digits that are not part of a longer word of letters and digits (a UUID's or a
// hex id's digits stay readable; a phone inside a JID, a URL or a sentence is masked).
const LONG_NUMBER = /(?<![0-9A-Za-z_-])\+?[0-9]{7,}(?![0-9A-Za-z_-])/g;

/** Masks every run of seven or more digits in a text (phone numbers inside error messages). */
export function maskNumbers(text: string): string {
  return text.replace(LONG_NUMBER, (match) => maskIdentity(match));
}

/** A minimal structured logger. */
export interface Logger {
  /** Whether lines of this level are written (to skip building fields nobody will read). */
  enabled(level: LogLevel): boolean;
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * Masks a phone number or LID so that a log line cannot identify the person:
 * `+919963064165` → `+91******165`, `lid:123456789` → `lid:******789`.
 */
export function maskIdentity(identity: string): string {
  const prefix = identity.startsWith("lid:") ? "lid:" : identity.startsWith("+") ? "+" : "";
  const digits = identity.slice(prefix.length);
  if (digits.length <= 5) return `${prefix}${"*".repeat(digits.length)}`;
  const head = prefix === "+" ? digits.slice(0, 2) : "";
  const tail = digits.slice(-3);
  return `${prefix}${head}${"*".repeat(digits.length - head.length - tail.length)}${tail}`;
}

/** Creates a logger writing one JSON object per line to the console. */
export function createLogger(level: LogLevel = "info", base: Record<string, unknown> = {}): Logger {
  const threshold = LEVELS[level];
  const write = (lineLevel: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lineLevel] < threshold) return;
    const line: Record<string, unknown> = { level: lineLevel, msg: message, ...base };
    for (const [name, value] of Object.entries(fields ?? {})) {
      line[name] = SECRET_FIELD.test(name)
        ? "[redacted]"
        : typeof value === "string"
        ? maskNumbers(value)
        : value;
    }
    const text = JSON.stringify(line);
    if (lineLevel === "error") console.error(text);
    else if (lineLevel === "warn") console.warn(text);
    else console.log(text);
  };
  return {
    enabled: (lineLevel) => LEVELS[lineLevel] >= threshold,
    debug: (message, fields) => write("debug", message, fields),
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
  };
}

/** A logger that discards everything (for tests and benchmarks). */
export const silentLogger: Logger = {
  enabled: () => false,
  debug() {},
  info() {},
  warn() {},
  error() {},
};
