/**
 * The one mapping from errors to HTTP responses shared by every function: 4xx for what the sender
 * did, 503 with `Retry-After` for outages and missing configuration, 500 only for bugs.
 */
import { ConfigError } from "./config.ts";
import { DatabaseUnavailableError } from "./exactly_once.ts";
import { errorResponse, HttpError } from "./http.ts";
import { createLogger, type Logger } from "./log.ts";
import { UnauthorizedError } from "./webhook_auth.ts";

/** Maps an error to its HTTP response, logging it without secrets or personal data. */
export function toErrorResponse(error: unknown, logger: Logger): Response {
  if (error instanceof HttpError) {
    if (error.status >= 500) logger.error(error.message, { code: error.code });
    else logger.info("request refused", { status: error.status, code: error.code });
    return errorResponse(error);
  }
  if (error instanceof UnauthorizedError) {
    logger.warn("request refused", { status: 401, reason: error.message });
    return errorResponse(new HttpError(401, "unauthorized", error.message));
  }
  if (error instanceof DatabaseUnavailableError) {
    const cause = error.cause instanceof Error ? error.cause.message : undefined;
    logger.error("database unavailable; claims released, sender should retry", { cause });
    return errorResponse(
      new HttpError(503, "database_unavailable", "the database is unavailable; retry later", {
        headers: { "retry-after": "5" },
      }),
    );
  }
  if (error instanceof ConfigError) {
    logger.error("function is not configured", { problems: error.problems.join("; ") });
    return errorResponse(
      new HttpError(503, "not_configured", "the function is not configured", {
        details: error.problems,
        headers: { "retry-after": "60" },
      }),
    );
  }
  logger.error("unexpected error", {
    error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
  });
  return errorResponse(new HttpError(500, "internal_error", "unexpected error"));
}

/** A request handler, as `Deno.serve` and `export default { fetch }` take it. */
export type FetchHandler = (request: Request) => Promise<Response>;

/**
 * A handler built from the environment once, on the first request. A configuration error answers
 * every request with 503 and names the variables to fix.
 */
export function handlerFromEnv(
  functionName: string,
  build: (env: Record<string, string | undefined>) => FetchHandler,
  env: () => Record<string, string | undefined> = () => Deno.env.toObject(),
): FetchHandler {
  const level = env().LOG_LEVEL;
  const logger = createLogger(
    level === "debug" || level === "warn" || level === "error" ? level : "info",
    { fn: functionName },
  );
  let built: FetchHandler | undefined;
  return (request: Request) => {
    if (!built) {
      try {
        built = build(env());
      } catch (error) {
        built = (_request: Request) => Promise.resolve(toErrorResponse(error, logger));
      }
    }
    return built(request);
  };
}
