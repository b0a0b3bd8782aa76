/**
 * The webhook-stats handler: `GET` answers the Idempotency-Key statistics (total / active /
 * expired / in-progress keys, per webhook type, replays served, table size, last cleanup run) for
 * the service role only. Any other caller gets 401 (no or invalid JWT) or 403 (valid JWT of
 * another role).
 */
import { jwtVerify } from "jose";
import postgres from "postgres";
import { ConfigError } from "../_shared/core/config.ts";
import {
  errorResponse,
  HttpError,
  jsonResponse,
  MethodNotAllowedError,
} from "../_shared/core/http.ts";
import { createLogger, type Logger } from "../_shared/core/log.ts";
import { parseStatsConfig, type StatsConfig } from "./config.ts";

/** The function's name. */
export const FUNCTION_NAME = "webhook-stats";

/** A request handler, as `Deno.serve` and `export default { fetch }` take it. */
export type FetchHandler = (request: Request) => Promise<Response>;

/** Reads the statistics (one round trip). */
export type StatsReader = () => Promise<Record<string, unknown>>;

/** 401: no bearer JWT, or one that does not verify. */
export class MissingOrInvalidJwtError extends HttpError {
  constructor(reason: string) {
    super(401, "unauthorized", reason, { headers: { "www-authenticate": "Bearer" } });
    this.name = "MissingOrInvalidJwtError";
  }
}

/** 403: a valid JWT whose role is not `service_role`. */
export class NotServiceRoleError extends HttpError {
  constructor() {
    super(403, "forbidden", "webhook-stats is for the service role only");
    this.name = "NotServiceRoleError";
  }
}

/** Verifies `Authorization: Bearer <HS256 JWT>` and requires `role = service_role`. */
export async function requireServiceRole(headers: Headers, secret: Uint8Array): Promise<void> {
  const token = /^Bearer\s+(\S+)$/i.exec(headers.get("authorization")?.trim() ?? "")?.[1];
  if (!token) throw new MissingOrInvalidJwtError("missing Authorization: Bearer <JWT>");
  let role: unknown;
  try {
    const { payload } = await jwtVerify(token, secret, { algorithms: ["HS256"] });
    role = payload.role;
  } catch (error) {
    throw new MissingOrInvalidJwtError(
      `JWT verification failed: ${error instanceof Error ? error.message : "invalid"}`,
    );
  }
  if (role !== "service_role") throw new NotServiceRoleError();
}

/** Builds the handler from its dependencies. */
export function createStatsHandler(
  deps: { jwtSecret: string; read: StatsReader; logger: Logger },
): FetchHandler {
  const secret = new TextEncoder().encode(deps.jwtSecret);
  return async (request) => {
    try {
      await requireServiceRole(request.headers, secret);
      if (request.method !== "GET") {
        throw new MethodNotAllowedError(request.method);
      }
      let stats;
      try {
        stats = await deps.read();
      } catch (error) {
        deps.logger.error("statistics unavailable", {
          cause: error instanceof Error ? error.message : String(error),
        });
        throw new HttpError(503, "database_unavailable", "the database is unavailable", {
          headers: { "retry-after": "5" },
        });
      }
      return jsonResponse(200, { idempotency: stats });
    } catch (error) {
      if (error instanceof HttpError) return errorResponse(error);
      throw error;
    }
  };
}

/** Reads `public.webhook_idempotency_stats()` through postgres.js. */
export function postgresStatsReader(
  config: StatsConfig,
): { read: StatsReader; close(): Promise<void> } {
  const sql = postgres(config.databaseUrl, {
    max: 1,
    prepare: false,
    connect_timeout: Math.max(1, Math.ceil(config.timeoutMs / 1000)),
    idle_timeout: 30,
    onnotice: () => {},
    connection: { application_name: FUNCTION_NAME, statement_timeout: config.timeoutMs },
  });
  return {
    read: async () => {
      const [row] = await sql<{ stats: Record<string, unknown> }[]>`
        select public.webhook_idempotency_stats() as stats`;
      return row.stats;
    },
    close: () => sql.end({ timeout: 1 }),
  };
}

/** The handler for `index.ts`: reads the environment once, on the first request. */
export function statsHandlerFromEnv(
  env: () => Record<string, string | undefined> = () => Deno.env.toObject(),
): FetchHandler {
  let built: FetchHandler | undefined;
  return (request) => {
    if (!built) {
      try {
        const config = parseStatsConfig(env());
        const logger = createLogger(config.logLevel, { fn: FUNCTION_NAME });
        built = createStatsHandler({
          jwtSecret: config.jwtSecret,
          read: postgresStatsReader(config).read,
          logger,
        });
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        const response = errorResponse(
          new HttpError(503, "not_configured", "the function is not configured", {
            details: error.problems,
            headers: { "retry-after": "60" },
          }),
        );
        built = () => Promise.resolve(response.clone());
      }
    }
    return built(request);
  };
}
