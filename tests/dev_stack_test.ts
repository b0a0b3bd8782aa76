/**
 * `./scripts/dev.sh` as a newcomer uses it: with no provider configured it starts a fake WhatsApp
 * provider (and says so), so whatsapp-send-batch can be tried end to end with the sample CSV and a
 * token from `deno task jwt`; the secrets the README's examples sign with are set and printed.
 */
import assert from "node:assert/strict";
import { freePort } from "../scripts/lib/ports.ts";
import { mintJwt } from "../scripts/lib/local_jwt.ts";
import { exitOf, startDenoCommand } from "./support/processes.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test("dev.ts without a provider: a fake one sends the sample CSV's batch", opts, async () => {
  const state = await Deno.makeTempDir({ prefix: "wa-dev-try-" });
  await Deno.chmod(state, 0o755);
  const port = freePort();
  const dev = startDenoCommand(["run", "-A", "scripts/dev.ts"], {
    LOCAL_STATE_DIR: state,
    PG_PORT: String(freePort()),
    PORT: String(port),
    LOG_LEVEL: "error",
  });
  try {
    await dev.waitForOutput(/Access tokens: deno task jwt/);
    const output = dev.output();
    assert.match(output, /FAKE WhatsApp provider on http:\/\/127\.0\.0\.1:\d+/);
    assert.match(output, /META_VERIFY_TOKEN=verify-me/);
    assert.match(output, /WAHA_HMAC_KEY=waha-key/);
    assert.match(
      output,
      new RegExp(`http://127\\.0\\.0\\.1:${port}/functions/v1/whatsapp-send-batch`),
    );

    const url = `http://127.0.0.1:${port}/functions/v1/whatsapp-send-batch`;
    const jwt = await mintJwt({ sub: crypto.randomUUID(), alg: "ES256" });
    const auth = { authorization: `Bearer ${jwt}` };
    const csv = await Deno.readTextFile(new URL("../examples/recipients.csv", import.meta.url));
    const created = await fetch(`${url}?message=${encodeURIComponent("Hi {{name}}")}`, {
      method: "POST",
      headers: { ...auth, "content-type": "text/csv" },
      body: csv,
    });
    const batch = await created.json();
    assert.equal(created.status, 201, JSON.stringify(batch));
    assert.equal(batch.accepted, 3);
    const sent = await fetch(`${url}/${batch.batch_id}/send`, { method: "POST", headers: auth });
    assert.equal(sent.status, 202);
    await sent.body?.cancel();
    let progress: { counts?: { sent: number } } = {};
    for (let i = 0; i < 100 && progress.counts?.sent !== 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      progress = await (await fetch(`${url}/${batch.batch_id}`, { headers: auth })).json();
    }
    assert.equal(progress.counts?.sent, 3, JSON.stringify(progress));

    // Meta's handshake works with the printed verify token.
    const handshake = await fetch(
      `http://127.0.0.1:${port}/functions/v1/whatsapp-message-webhook` +
        "?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=42",
    );
    assert.equal(await handshake.text(), "42");
  } finally {
    Deno.kill(dev.child.pid, "SIGTERM");
    await exitOf(dev);
    await Deno.remove(state, { recursive: true }).catch(() => {});
  }
});
