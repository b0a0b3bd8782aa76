/**
 * The whatsapp-membership-webhook handler: the shared pipeline (core/webhook/handler.ts) with the
 * membership webhook's own part — its formats (membership/formats/registry.ts), its claim rule,
 * normalising each participant (membership/normalize.ts) and its answer's `results`.
 *
 * `createMembershipWebhook` takes its dependencies, so tests and the benchmark build it directly;
 * `membershipWebhookFromEnv` builds them once from environment variables for `index.ts`.
 */
import { MAX_BODY_BYTES, type WebhookConfig } from "../_shared/core/config.ts";
import type { ClaimOf, EventResult } from "../_shared/core/exactly_once.ts";
import { FormatRegistry } from "../_shared/core/formats/registry.ts";
import { maskIdentity } from "../_shared/core/log.ts";
import { readJson } from "../_shared/core/webhook/body.ts";
import { createWebhookHandler, type WebhookHandler } from "../_shared/core/webhook/handler.ts";
import type { Issue, Normalized, WebhookDeps, WebhookSpec } from "../_shared/core/webhook/spec.ts";
import { type BuildArgs, buildWebhook, webhookFromEnv } from "../_shared/core/webhook_runtime.ts";
import { dedupKey } from "../_shared/membership/dedup_key.ts";
import type { MembershipEvent } from "../_shared/membership/event.ts";
import type {
  MembershipChanges,
  MembershipFormat,
  RawMembershipChange,
} from "../_shared/membership/formats/delivery.ts";
import {
  MEMBERSHIP_REGISTRY,
  requireParticipants,
} from "../_shared/membership/formats/registry.ts";
import { type NormalizedChange, normalizeEach } from "../_shared/membership/normalize.ts";
import { membershipApply } from "../_shared/membership/repository.ts";
import { ORDERING_HORIZON_MS } from "../_shared/whatsapp/event_time.ts";

/** The function's name, and the last path segment of its URL. */
export const FUNCTION_NAME = "whatsapp-membership-webhook";

/** Dependencies of {@link createMembershipWebhook}. */
export interface MembershipWebhookDeps extends WebhookDeps<MembershipEvent> {
  /** The gateway formats understood (default: every format of the registry). */
  formats?: readonly MembershipFormat[];
}

/** The claim of a membership event: a person's events alternate (join, leave, join), so the
 * subject makes a rejoin never a copy of the join before the leave. */
export function membershipClaim(windowMs: number): ClaimOf<MembershipEvent> {
  return (event) => ({
    key: dedupKey(event, windowMs),
    at: event.at,
    subject: `${event.groupJid}|${event.participant}`,
    action: event.action,
  });
}

/** A delivery's participants, each normalised on its own. */
interface NormalizedMembership extends Normalized<MembershipEvent> {
  changes: RawMembershipChange[];
  each: NormalizedChange[];
}

/** The membership webhook's own part of the pipeline, but for its formats. */
const MEMBERSHIP: Omit<
  WebhookSpec<unknown, MembershipChanges, MembershipEvent, NormalizedMembership>,
  "formats"
> = {
  functionName: FUNCTION_NAME,
  webhookType: "membership",
  maxBodyBytes: MAX_BODY_BYTES,
  readsForms: false,
  input: readJson,
  check: requireParticipants,
  normalize,
  issues,
  answer,
  describe: (r) => `${r.outcome}@${r.decidedBy}`,
};

/** Builds the handler from its dependencies. */
export function createMembershipWebhook(deps: MembershipWebhookDeps): WebhookHandler {
  const formats = deps.formats ? new FormatRegistry(deps.formats) : MEMBERSHIP_REGISTRY;
  return createWebhookHandler({ ...MEMBERSHIP, formats }, deps);
}

/** Normalises each participant on its own: invalid ones are reported, valid ones go on. */
function normalize(delivery: MembershipChanges, receivedAt: number): NormalizedMembership {
  const { changes } = delivery;
  const each = normalizeEach(changes, receivedAt, delivery.paths);
  const events: MembershipEvent[] = [];
  const rejected: { path: string; reason: string }[] = [];
  each.forEach((n, i) => {
    if (n.ok) events.push(n.event);
    else {
      rejected.push({ path: changes[i].path, reason: n.issues.map((x) => x.message).join("; ") });
    }
  });
  return { events, rejected, skipped: rejected.length, changes, each };
}

/** Every distinct issue of the participants, when none is valid. */
function issues(normalized: NormalizedMembership): Issue[] {
  const distinct = new Map<string, Issue>();
  for (const n of normalized.each) {
    if (!n.ok) { for (const i of n.issues) distinct.set(`${i.path}\u0000${i.message}`, i); }
  }
  return [...distinct.values()];
}

/** One entry per participant, in the payload's order; a copy only when every one was a copy. */
function answer(normalized: NormalizedMembership, results: EventResult<MembershipEvent>[]) {
  const { changes, each } = normalized;
  let next = 0;
  const entries = each.map((n, i) => {
    if (!n.ok) {
      return {
        path: changes[i].path,
        event: changes[i].action,
        outcome: "rejected",
        reason: n.issues.map((issue) => issue.message).join("; "),
      };
    }
    const r = results[next++];
    return {
      phone: maskIdentity(r.applied?.participant ?? r.event.participant),
      event: r.event.action,
      outcome: r.outcome,
    };
  });
  const duplicate = results.every((r) => r.outcome === "duplicate") &&
    entries.length === results.length;
  return { results: entries, duplicate };
}

/** Builds the handler and its dependencies from a validated configuration. */
export function createMembershipWebhookFromConfig(
  config: WebhookConfig,
  ...[logger, idempotencyConfig, formats]: BuildArgs<MembershipFormat>
) {
  return buildWebhook(config, {
    functionName: FUNCTION_NAME,
    apply: membershipApply(config.dedup.copyWindowMs),
    claimOf: membershipClaim(config.dedup.windowMs),
    copyWindowMs: config.dedup.copyWindowMs,
    horizonMs: ORDERING_HORIZON_MS,
    logger,
    idempotencyConfig,
    secretNames: "WEBHOOK_SECRET, WAHA_HMAC_KEY, META_APP_SECRET or STANDARD_WEBHOOKS_SECRET",
  }, (runtime) => createMembershipWebhook({ ...runtime, formats }));
}

/** The handler for `index.ts`: reads the environment once, on the first request. */
export const membershipWebhookFromEnv = webhookFromEnv(
  FUNCTION_NAME,
  (config, _values, idempotency) =>
    createMembershipWebhookFromConfig(config, undefined, idempotency),
);
