import assert from "node:assert/strict";
import {
  InvalidIdentityError,
  normalizeGroupJid,
  normalizeParticipant,
} from "../supabase/functions/_shared/whatsapp/identity.ts";

const PHONE = "+919963064165";

Deno.test("participant: every JID flavour and number format of one person gives one E.164", () => {
  const forms: (string | number)[] = [
    "919963064165@s.whatsapp.net",
    "919963064165@c.us",
    "919963064165:12@s.whatsapp.net",
    "919963064165:0@c.us",
    "919963064165_1:3@s.whatsapp.net",
    "919963064165@S.WHATSAPP.NET",
    " 919963064165@s.whatsapp.net ",
    "919963064165",
    "+919963064165",
    "+91 99630 64165",
    "+91-99630-64165",
    "(+91) 99630.64165",
    919963064165,
  ];
  for (const form of forms) {
    assert.equal(normalizeParticipant(form), PHONE, `form ${JSON.stringify(form)}`);
  }
});

Deno.test("participant: other countries keep their own country code", () => {
  assert.equal(normalizeParticipant("5511987654321@s.whatsapp.net"), "+5511987654321");
  assert.equal(normalizeParticipant("14155552671@c.us"), "+14155552671");
  assert.equal(normalizeParticipant("+44 7911 123456"), "+447911123456");
});

Deno.test("participant: LIDs are kept as lid:<digits>, never phone-parsed", () => {
  assert.equal(normalizeParticipant("123456789012345@lid"), "lid:123456789012345");
  assert.equal(normalizeParticipant("123456789012345:7@lid"), "lid:123456789012345");
  assert.equal(normalizeParticipant("lid:123456789012345"), "lid:123456789012345");
});

Deno.test("participant: invalid values are refused", () => {
  for (
    const bad of ["", "abc", "12", "+", "919963064165@g.us", "9199@broadcast", "x@lid", "0000000"]
  ) {
    assert.throws(
      () => normalizeParticipant(bad),
      InvalidIdentityError,
      `value ${JSON.stringify(bad)}`,
    );
  }
});

Deno.test("group: modern and legacy JIDs keep their whole user part", () => {
  assert.equal(normalizeGroupJid("120363025246125486@g.us"), "120363025246125486@g.us");
  assert.equal(normalizeGroupJid("120363025246125486"), "120363025246125486@g.us");
  assert.equal(normalizeGroupJid(" 120363025246125486@G.US "), "120363025246125486@g.us");
  // Legacy creator-timestamp groups: the creator's number is part of the id, not a phone.
  assert.equal(normalizeGroupJid("919963064165-1561234567@g.us"), "919963064165-1561234567@g.us");
  assert.equal(normalizeGroupJid("919963064165-1561234567"), "919963064165-1561234567@g.us");
});

Deno.test("group: non-group JIDs and junk are refused", () => {
  for (
    const bad of [
      "919963064165@s.whatsapp.net",
      "abc@g.us",
      "",
      "1-2@g.us",
      "120363025246125486@lid",
    ]
  ) {
    assert.throws(
      () => normalizeGroupJid(bad),
      InvalidIdentityError,
      `value ${JSON.stringify(bad)}`,
    );
  }
});
