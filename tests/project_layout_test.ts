/**
 * The deployable layout: config.toml settings, entry points and import maps.
 */
import assert from "node:assert/strict";
import { parse as parseToml } from "smol-toml";

const root = new URL("../", import.meta.url);

Deno.test("config.toml: the webhook verifies its own signatures (verify_jwt = false)", async () => {
  const config = parseToml(await Deno.readTextFile(new URL("supabase/config.toml", root))) as {
    functions: Record<string, { verify_jwt?: boolean; entrypoint?: string; import_map?: string }>;
  };
  const fn = config.functions["whatsapp-membership-webhook"];
  assert.equal(fn.verify_jwt, false);
  assert.equal(fn.entrypoint, "./functions/whatsapp-membership-webhook/index.ts");
  assert.equal(fn.import_map, "./functions/whatsapp-membership-webhook/deno.json");
});

Deno.test("index.ts: only wires export default { fetch } to the handler", async () => {
  const mod = await import("../supabase/functions/whatsapp-membership-webhook/index.ts");
  assert.equal(typeof mod.default.fetch, "function");
  assert.deepEqual(Object.keys(mod), ["default"]);
});

Deno.test("the function's import map pins the same versions as the root one", async () => {
  const read = async (path: string) =>
    JSON.parse(await Deno.readTextFile(new URL(path, root))).imports as Record<string, string>;
  const rootImports = await read("deno.json");
  const fnImports = await read("supabase/functions/whatsapp-membership-webhook/deno.json");
  for (const [name, specifier] of Object.entries(fnImports)) {
    assert.equal(rootImports[name], specifier, name);
  }
  // Everything the shared code imports by bare name is in the function's map.
  const bare = new Set<string>();
  const walk = async (dir: URL) => {
    for await (const entry of Deno.readDir(dir)) {
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) await walk(url);
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(url);
        for (const match of text.matchAll(/from "([^."][^"]*)"/g)) {
          if (!match[1].startsWith("node:")) bare.add(match[1]);
        }
      }
    }
  };
  await walk(new URL("supabase/functions/", root));
  for (const name of bare) {
    assert.ok(name in fnImports, `${name} missing from the function's deno.json`);
  }
});

Deno.test("whatsapp-send-batch: verify_jwt = true, index.ts only wires the handler, pinned map", async () => {
  const config = parseToml(await Deno.readTextFile(new URL("supabase/config.toml", root))) as {
    functions: Record<string, { verify_jwt?: boolean; entrypoint?: string; import_map?: string }>;
  };
  const fn = config.functions["whatsapp-send-batch"];
  assert.equal(fn.verify_jwt, true);
  assert.equal(fn.entrypoint, "./functions/whatsapp-send-batch/index.ts");
  assert.equal(fn.import_map, "./functions/whatsapp-send-batch/deno.json");
  const mod = await import("../supabase/functions/whatsapp-send-batch/index.ts");
  assert.deepEqual(Object.keys(mod), ["default"]);
  const read = async (path: string) =>
    JSON.parse(await Deno.readTextFile(new URL(path, root))).imports as Record<string, string>;
  const rootImports = await read("deno.json");
  const fnImports = await read("supabase/functions/whatsapp-send-batch/deno.json");
  for (const [name, specifier] of Object.entries(fnImports)) {
    assert.equal(rootImports[name], specifier, name);
  }
  // Everything the function's own code imports by bare name is in its map.
  for (
    const dir of [
      "supabase/functions/_shared/send_batch/",
      "supabase/functions/whatsapp-send-batch/",
    ]
  ) {
    const walk = async (url: URL) => {
      for await (const entry of Deno.readDir(url)) {
        const child = new URL(entry.name + (entry.isDirectory ? "/" : ""), url);
        if (entry.isDirectory) await walk(child);
        else if (entry.name.endsWith(".ts")) {
          const text = await Deno.readTextFile(child);
          for (const match of text.matchAll(/from "([^."][^"]*)"/g)) {
            if (!match[1].startsWith("node:")) {
              assert.ok(match[1] in fnImports, `${match[1]} missing`);
            }
          }
        }
      }
    };
    await walk(new URL(dir, root));
  }
});
