/**
 * Normalisation of parsed changes into {@link MembershipEvent}s: canonical group JID and
 * participant, and the event time. Every problem is reported with its path, all at once.
 */
import { resolveEventTime } from "../whatsapp/event_time.ts";
import type { RawMembershipChange } from "./formats/delivery.ts";
import { isAlias, normalizeGroupJid, normalizeParticipant } from "../whatsapp/identity.ts";
import type { MembershipEvent } from "./event.ts";

/** One problem found while normalising, with the payload path it concerns. */
export interface NormalizationIssue {
  path: string;
  message: string;
}

/** Raised when some changes cannot be normalised. */
export class NormalizationError extends Error {
  readonly issues: NormalizationIssue[];
  constructor(issues: NormalizationIssue[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join("; "));
    this.name = "NormalizationError";
    this.issues = issues;
  }
}

/** Normalises a paired identity, or undefined when it is not usable (a pair is optional). */
function tryNormalize(raw: string | number): string | undefined {
  try {
    return normalizeParticipant(raw);
  } catch {
    return undefined;
  }
}

/** The normalisation of one change: its event, or why it was rejected. */
export type NormalizedChange =
  | { ok: true; event: MembershipEvent }
  | { ok: false; issues: NormalizationIssue[] };

/**
 * Normalises each change on its own, so that one invalid participant does not refuse the valid
 * ones. `paths` name the group and timestamp fields for error messages.
 */
export function normalizeEach(
  changes: readonly RawMembershipChange[],
  receivedAt: number,
  paths: { group: string; timestamp: string } = { group: "groupJid", timestamp: "timestamp" },
): NormalizedChange[] {
  return changes.map((change) => normalizeOne(change, receivedAt, paths));
}

/**
 * Normalises every change, or throws {@link NormalizationError} listing every problem.
 * `paths` name the group and timestamp fields for error messages.
 */
export function normalizeChanges(
  changes: readonly RawMembershipChange[],
  receivedAt: number,
  paths: { group: string; timestamp: string } = { group: "groupJid", timestamp: "timestamp" },
): MembershipEvent[] {
  const issues: NormalizationIssue[] = [];
  const events: MembershipEvent[] = [];
  for (const result of normalizeEach(changes, receivedAt, paths)) {
    if (result.ok) events.push(result.event);
    else {
      for (const issue of result.issues) {
        if (!issues.some((i) => i.path === issue.path && i.message === issue.message)) {
          issues.push(issue);
        }
      }
    }
  }
  if (issues.length > 0) throw new NormalizationError(issues);
  return events;
}

function normalizeOne(
  change: RawMembershipChange,
  receivedAt: number,
  paths: { group: string; timestamp: string },
): NormalizedChange {
  const issues: NormalizationIssue[] = [];
  const issue = (path: string, error: unknown) =>
    issues.push({ path, message: error instanceof Error ? error.message : String(error) });
  let groupJid: string | undefined;
  let participant: string | undefined;
  let time: ReturnType<typeof resolveEventTime> | undefined;
  try {
    groupJid = normalizeGroupJid(change.group);
  } catch (error) {
    issue(paths.group, error);
  }
  let lid: string | undefined;
  try {
    participant = normalizeParticipant(change.participant);
    // A LID or BSUID paired with a phone in the payload: the phone is the identity, the pair is
    // learned (a BSUID is kept in the `lid` slot: both stand in for a phone).
    if (isAlias(participant) && change.phone !== undefined) {
      const phone = tryNormalize(change.phone);
      if (phone && !isAlias(phone)) [lid, participant] = [participant, phone];
    } else if (!isAlias(participant) && change.lid !== undefined) {
      const paired = tryNormalize(change.lid);
      if (paired && isAlias(paired)) lid = paired;
    }
  } catch (error) {
    issue(change.path, error);
  }
  try {
    time = resolveEventTime(change.timestamp, receivedAt);
  } catch (error) {
    issue(paths.timestamp, error);
  }
  if (!groupJid || !participant || !time) return { ok: false, issues };
  return {
    ok: true,
    event: {
      action: change.action,
      groupJid,
      participant,
      ...(lid ? { lid } : {}),
      at: time.at,
      atSource: time.source,
    },
  };
}
