/**
 * Meta's business-scoped user IDs (issue 16, item 5) over HTTP, two function instances on the real
 * database: BSUID-only messages (also in groups) are stored once, a `user_changed_user_id` system
 * message is stored, BSUID statuses are accepted, BSUID-only group participants are applied and in
 * `results`, and a later payload pairing the BSUID with the phone merges the member rows.
 */
import assert from "node:assert/strict";
import * as bs from "./fixtures/bsuid_examples.ts";
import * as ex from "./fixtures/message_examples.ts";
import { databaseUrl, groupRows, sqlClient, uniqueGroup } from "./support/env.ts";
import { startFunctionInstance } from "./support/function_instance.ts";
import { MESSAGE_ENV } from "./support/message_webhook.ts";
import { signedHeaders } from "./support/signing.ts";
import { metaFormat } from "../supabase/functions/_shared/membership/formats/meta.ts";
import {
  InvalidIdentityError,
  normalizeBsuid,
  normalizeParticipant,
} from "../supabase/functions/_shared/whatsapp/identity.ts";

const MESSAGES = "whatsapp-message-webhook";
const MEMBERS = "whatsapp-membership-webhook";

async function post(url: string, payload: unknown) {
  const body = JSON.stringify(payload);
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...await signedHeaders("meta", body) },
    body,
  });
  return { status: response.status, body: await response.json() };
}

Deno.test("BSUID identities end to end", async (t) => {
  const env = { SUPABASE_DB_URL: databaseUrl(), ...MESSAGE_ENV };
  const [a, b] = await Promise.all([startFunctionInstance(env), startFunctionInstance(env)]);
  const sql = sqlClient();
  const messageRows = async (account: string, id: string) => [
    ...await sql<{ chat: string; sender: string; type: string; body: string | null }[]>`
      select chat, sender, type, body from public.whatsapp_messages
      where account = ${account} and message_id = ${id}`,
  ];
  try {
    await t.step("a BSUID-only message: 200, stored once with the BSUID as sender", async () => {
      const account = ex.phoneNumberId();
      const id = `wamid.${ex.messageId("HBgM")}`;
      const user = bs.bsuid();
      const payload = bs.bsuidOnlyMessage({ phoneNumberId: account, id, userId: user });
      const results = await Promise.all(
        [a, b, a, b].map((i) => post(i.url(MESSAGES), payload)),
      );
      for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
      const outcomes = results.map((r) => r.body.results[0].outcome);
      assert.equal(outcomes.filter((o) => o === "applied").length, 1, outcomes.join());
      assert.deepEqual(await messageRows(account, id), [{
        chat: `bsuid:${user}`,
        sender: `bsuid:${user}`,
        type: "text",
        body: "this is a text message",
      }]);
    });

    await t.step(
      "a BSUID-only message in a group: the group is the chat, stored once",
      async () => {
        const account = ex.phoneNumberId();
        const id = `wamid.${ex.messageId("HBgM")}`;
        const user = bs.bsuid("BR");
        const group = uniqueGroup();
        const payload = bs.bsuidOnlyMessage({
          phoneNumberId: account,
          id,
          userId: user,
          groupId: group.replace("@g.us", ""),
        });
        const [r1, r2] = await Promise.all([
          post(a.url(MESSAGES), payload),
          post(b.url(MESSAGES), payload),
        ]);
        assert.deepEqual([r1.status, r2.status], [200, 200]);
        const rows = await messageRows(account, id);
        assert.equal(rows.length, 1);
        assert.equal(rows[0].chat, group);
        assert.equal(rows[0].sender, `bsuid:${user}`);
      },
    );

    await t.step("a `from` that is not a possible phone number is kept as given", async () => {
      const account = ex.phoneNumberId();
      const id = `wamid.${ex.messageId("HBgM")}`;
      const payload = ex.metaWebhook(account, [{
        messages: [ex.metaMessage({ id, from: "999" })],
      }]);
      const r = await post(a.url(MESSAGES), payload);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.results[0].outcome, "applied");
      assert.equal((await messageRows(account, id))[0].sender, "999");
    });

    await t.step("a user_changed_user_id system message is stored from the new BSUID", async () => {
      const account = ex.phoneNumberId();
      const id = `wamid.${ex.messageId("HBgM")}`;
      const [previous, next] = [bs.bsuid(), bs.bsuid()];
      const payload = bs.userChangedUserId({ phoneNumberId: account, id, previous, next });
      const r = await post(a.url(MESSAGES), payload);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.results[0].outcome, "applied");
      const [row] = await messageRows(account, id);
      assert.equal(row.type, "system");
      assert.equal(row.sender, `bsuid:${previous}`);
    });

    await t.step("a status of a message sent to a BSUID is still accepted", async () => {
      const account = ex.phoneNumberId();
      const id = `wamid.${ex.messageId("HBgM")}`;
      const r = await post(
        a.url(MESSAGES),
        bs.bsuidStatus({ phoneNumberId: account, id, userId: bs.bsuid() }),
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.results[0].outcome, "applied");
    });

    await t.step(
      "BSUID-only group participants are applied, then merged with the phone",
      async () => {
        const group = uniqueGroup();
        const groupId = group.replace("@g.us", "");
        const user = bs.bsuid();
        const ts = Math.floor(Date.now() / 1000) - 120;
        const join = bs.groupParticipants({
          groupId,
          type: "group_participants_add",
          participants: [{ userId: user }],
          ts,
        });
        const [j1, j2] = await Promise.all([
          post(a.url(MEMBERS), join),
          post(b.url(MEMBERS), join),
        ]);
        assert.deepEqual([j1.status, j2.status], [200, 200], JSON.stringify(j1.body));
        const joined = [j1, j2].map((r) => r.body.results[0]);
        // One row change: the copy is answered without writing (unchanged or duplicate).
        assert.equal(joined.filter((r) => r.outcome === "applied").length, 1);
        assert.deepEqual((await groupRows(sql, group)).map((r) => [r.phone, r.status]), [
          [`bsuid:${user}`, "member"],
        ]);

        const remove = bs.groupParticipants({
          groupId,
          type: "group_participants_remove",
          participants: [{ userId: user }],
          ts: ts + 10,
        });
        const left = await post(a.url(MEMBERS), remove);
        assert.equal(left.status, 200, JSON.stringify(left.body));
        assert.equal(left.body.results.length, 1);
        assert.equal(left.body.results[0].outcome, "applied");
        assert.deepEqual((await groupRows(sql, group)).map((r) => [r.phone, r.status]), [
          [`bsuid:${user}`, "left"],
        ]);

        // A later payload names the phone with the BSUID: one person, one row, keyed by the phone.
        const rejoin = bs.groupParticipants({
          groupId,
          type: "group_participants_add",
          participants: [{ userId: user, waId: "16315551181" }],
          ts: ts + 20,
        });
        const r = await post(b.url(MEMBERS), rejoin);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.results[0].outcome, "applied");
        assert.deepEqual((await groupRows(sql, group)).map((r) => [r.phone, r.status]), [
          ["+16315551181", "member"],
        ]);
        const [pair] = await sql`select phone from public.whatsapp_lid_phones
        where lid = ${"bsuid:" + user}`;
        assert.equal(pair.phone, "+16315551181");

        // Afterwards the BSUID alone names the phone's row.
        const leaveAgain = bs.groupParticipants({
          groupId,
          type: "group_participants_remove",
          participants: [{ userId: user }],
          ts: ts + 30,
        });
        const l2 = await post(a.url(MEMBERS), leaveAgain);
        assert.equal(l2.body.results[0].outcome, "applied");
        assert.deepEqual((await groupRows(sql, group)).map((r) => [r.phone, r.status]), [
          ["+16315551181", "left"],
        ]);
      },
    );
  } finally {
    await sql.end();
    await Promise.all([a.stop(), b.stop()]);
  }
});

Deno.test("BSUID identities: normalisation", () => {
  assert.equal(normalizeBsuid("US.13491208655302741918"), "bsuid:US.13491208655302741918");
  assert.equal(
    normalizeBsuid("bsuid:US.ENT.11815799212886844830"),
    "bsuid:US.ENT.11815799212886844830",
  );
  assert.equal(normalizeParticipant("bsuid:BR.1502576394655843"), "bsuid:BR.1502576394655843");
  assert.throws(() => normalizeBsuid("13491208655302741918"), InvalidIdentityError);
  assert.throws(() => normalizeBsuid("US.12 34"), InvalidIdentityError);
});

Deno.test("BSUID identities: Meta group participants by BSUID, or paired with the phone", () => {
  const user = bs.bsuid();
  const parsed = metaFormat.parse(bs.groupParticipants({
    groupId: "120363405226577317",
    type: "group_participants_remove",
    participants: [{ userId: user }, { userId: bs.bsuid(), waId: "16315551181" }],
    ts: 1739321024,
  }));
  assert.equal(parsed.kind, "changes");
  if (parsed.kind !== "changes") return;
  assert.deepEqual(parsed.changes.map((c) => [c.action, c.participant, c.lid ?? null]), [
    ["leave", `bsuid:${user}`, null],
    ["leave", "16315551181", parsed.changes[1].lid],
  ]);
  assert.match(String(parsed.changes[1].lid), /^bsuid:US\./);
});
