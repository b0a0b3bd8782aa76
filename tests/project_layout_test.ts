/**
 * The deployable layout: config.toml settings, entry points and import maps.
 */
import assert from "node:assert/strict";
import { parse as parseToml } from "smol-toml";

const root = new URL("../", import.meta.url);

/** The deployed functions and whether the platform checks a JWT before calling them. */
const FUNCTIONS: Record<string, boolean> = {
  // Gateways send no Supabase JWT: these check each gateway's signature themselves.
  "whatsapp-membership-webhook": false,
  "whatsapp-message-webhook": false,
  // A user's JWT or a secret API key (not a JWT): the function verifies either itself.
  "whatsapp-send-batch": false,
  // Service role only (its JWT or a secret API key): the function verifies it itself.
  "webhook-stats": false,
  "webhook-replay": false,
};

Deno.test("config.toml: each function's entry point, import map and verify_jwt", async () => {
  const config = parseToml(await Deno.readTextFile(new URL("supabase/config.toml", root))) as {
    functions: Record<string, { verify_jwt?: boolean; entrypoint?: string; import_map?: string }>;
  };
  for (const [name, verifyJwt] of Object.entries(FUNCTIONS)) {
    const fn = config.functions[name];
    assert.ok(fn, `${name} has a config.toml section`);
    assert.equal(fn.verify_jwt, verifyJwt, name);
    assert.equal(fn.entrypoint, `./functions/${name}/index.ts`);
    assert.equal(fn.import_map, `./functions/${name}/deno.json`);
  }
});

Deno.test("index.ts: only wires export default { fetch } to the handler", async () => {
  for (const name of Object.keys(FUNCTIONS)) {
    const mod = await import(`../supabase/functions/${name}/index.ts`);
    assert.equal(typeof mod.default.fetch, "function", name);
    assert.deepEqual(Object.keys(mod), ["default"], name);
  }
});

Deno.test("the function's import map pins the same versions as the root one", async () => {
  const read = async (path: string) =>
    JSON.parse(await Deno.readTextFile(new URL(path, root))).imports as Record<string, string>;
  const rootImports = await read("deno.json");
  const maps = await Promise.all(
    Object.keys(FUNCTIONS).map((fn) => read(`supabase/functions/${fn}/deno.json`)),
  );
  for (const fnImports of maps) {
    for (const [name, specifier] of Object.entries(fnImports)) {
      assert.equal(rootImports[name], specifier, name);
    }
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
  for (const [i, fnImports] of maps.entries()) {
    for (const name of bare) {
      assert.ok(name in fnImports, `${name} missing from ${Object.keys(FUNCTIONS)[i]}/deno.json`);
    }
  }
});
