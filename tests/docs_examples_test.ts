/**
 * Every shell example of README.md and docs/*.md runs, exactly as written, against the local stack
 * a reader starts with `./scripts/dev.sh`, so that no example can drift from the code.
 *
 * Fences: a ```sh block runs. Three info strings mark blocks that cannot run inside this test, and
 * only these: ```sh server (starts the long-running local stack, which this test starts itself
 * as that block says), ```sh deploy (needs a Supabase project) and ```sh long (the benchmark, the
 * test suite itself); those are listed and checked with `bash -n`. Any other shell fence
 * (```bash, ```shell, an unknown info string) fails the test.
 *
 * The stack is started once (`./scripts/dev.sh`, a temporary LOCAL_STATE_DIR, free PORT and
 * PG_PORT, stopped at the end, also on failure). Each document's blocks run in file order in one
 * bash session (`set -euo pipefail`, from the repository root, with PORT and PG_PORT of the stack
 * and no secret in the environment), so a variable one block sets is seen by the next, as in a
 * reader's shell.
 *
 * Expected answers: a comment line `# <status> <answer>` or `# <answer>` right after a command
 * (the answer a JSON value or text, continued on following `#` lines until its brackets close)
 * is checked against what the commands since the previous answer printed: the status is the last
 * line printed (curl `-w '\n%{http_code}\n'`), and a JSON answer must match the printed JSON: every
 * key shown is present with the value shown, `"…"` or `…` matches any value, a string with `…`
 * in it matches any text there, `[a, …]` is an array starting with `a`.
 */
import assert from "node:assert/strict";
import { freePort } from "../scripts/lib/ports.ts";
import { childProcessEnv } from "../scripts/lib/child_env.ts";
import { exitOf, killLeftovers, type StartedCommand } from "./support/processes.ts";
import { descendants } from "../scripts/lib/process_tree.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SKIPPED_TAGS = new Set(["server", "deploy", "long"]);
const DOC_TIMEOUT_MS = 180_000;
const SHELL_LANGS = new Set(["sh", "bash", "shell", "console", "zsh", "shell-session"]);

/** One fenced shell block of a document. */
export interface ShellBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The info string after `sh` ("" when none). */
  tag: string;
  lang: string;
  text: string;
}

/** An expected answer shown in a comment. */
export interface Expected {
  status?: number;
  body?: string;
  line: number;
}

/** Commands up to and including one expected answer (or the rest of a block). */
export interface Step {
  script: string;
  /** 1-based line in the document of the step's first line. */
  line: number;
  expected?: Expected;
}

/** The documents whose examples are tested, README first. */
export async function documents(): Promise<string[]> {
  const docs: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}docs`)) {
    if (entry.isFile && entry.name.endsWith(".md")) docs.push(`docs/${entry.name}`);
  }
  return ["README.md", ...docs.sort()];
}

/** The fenced shell blocks of a markdown text, in order. */
export function shellBlocks(file: string, markdown: string): ShellBlock[] {
  const lines = markdown.split("\n");
  const blocks: ShellBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,}|~{3,})\s*([\w-]*)\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const fence = open[1];
    let j = i + 1;
    while (j < lines.length && !lines[j].startsWith(fence)) j++;
    const lang = open[2].toLowerCase();
    if (SHELL_LANGS.has(lang)) {
      blocks.push({
        file,
        line: i + 1,
        lang,
        tag: open[3].trim(),
        text: lines.slice(i + 1, j).join("\n"),
      });
    }
    i = j;
  }
  return blocks;
}

const ANSWER = /^# (?:(\d{3})(?: (.*))?|([[{].*))$/;

/** Whether the brackets of a JSON-ish text are balanced (strings skipped). */
function balanced(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
  }
  return depth <= 0;
}

/** Splits a block into steps, each ending with one expected answer (the last one may have none). */
export function steps(block: ShellBlock): Step[] {
  const lines = block.text.split("\n");
  const out: Step[] = [];
  let current: string[] = [];
  let start = block.line + 1;
  for (let i = 0; i < lines.length; i++) {
    const match = ANSWER.exec(lines[i]);
    if (!match) {
      current.push(lines[i]);
      continue;
    }
    const first = i;
    const answerLine = block.line + 1 + i;
    let body = match[2] ?? match[3];
    while (body !== undefined && /^[[{]/.test(body) && !balanced(body) && i + 1 < lines.length) {
      const next = /^#\s?(.*)$/.exec(lines[i + 1]);
      if (!next) break;
      body += next[1].trim();
      i++;
    }
    current.push(...lines.slice(first, i + 1));
    out.push({
      script: current.join("\n"),
      line: start,
      expected: {
        status: match[1] === undefined ? undefined : Number(match[1]),
        body: body?.trim() || undefined,
        line: answerLine,
      },
    });
    current = [];
    start = block.line + 2 + i;
  }
  if (current.some((l) => l.trim() !== "" && !l.trim().startsWith("#"))) {
    out.push({ script: current.join("\n"), line: start });
  }
  return out;
}

const MORE = "\u0000more";

/** The JSON value an expected answer shows, with `…` turned into wildcards. */
export function expectedJson(text: string): unknown {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i];
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    if (c !== "…") {
      out += c;
      continue;
    }
    const before = out.trimEnd().at(-1);
    const after = text.slice(i + 1).trimStart()[0];
    if (before === ":") out += '"…"';
    else if (after === "}" || after === "]") {
      // "and more": objects are matched as subsets anyway; arrays get a marker.
      if (before === ",") out = out.trimEnd().slice(0, -1);
      const opener = findOpener(out);
      if (opener === "[") out += (before === "," ? "," : "") + JSON.stringify(MORE);
    } else out += '"…"';
  }
  return JSON.parse(out);
}

/** The bracket that the text's innermost open container starts with. */
function findOpener(text: string): string | undefined {
  const stack: string[] = [];
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") stack.push(c);
    else if (c === "}" || c === "]") stack.pop();
  }
  return stack.at(-1);
}

function wildcard(pattern: string): RegExp {
  const parts = pattern.split("…").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join("[\\s\\S]*")}$`);
}

/** Mismatches of `actual` against the expected pattern (empty: it matches). */
export function mismatches(expected: unknown, actual: unknown, path = "$"): string[] {
  if (typeof expected === "string") {
    if (expected === "…") return [];
    if (expected.includes("…")) {
      return typeof actual === "string" && wildcard(expected).test(actual)
        ? []
        : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
    }
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) {
      return [`${path}: expected an array, got ${JSON.stringify(actual)}`];
    }
    const open = expected.at(-1) === MORE;
    const items = open ? expected.slice(0, -1) : expected;
    if (open ? actual.length < items.length : actual.length !== items.length) {
      return [
        `${path}: expected ${items.length}${open ? " or more" : ""} items, got ${actual.length}`,
      ];
    }
    return items.flatMap((item, i) => mismatches(item, actual[i], `${path}[${i}]`));
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) {
      return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
    }
    const object = actual as Record<string, unknown>;
    return Object.entries(expected).flatMap(([key, value]) =>
      key in object
        ? mismatches(value, object[key], `${path}.${key}`)
        : [`${path}.${key}: missing (keys: ${Object.keys(object).join(", ")})`]
    );
  }
  return Object.is(expected, actual)
    ? []
    : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

/** Checks a step's printed output against its expected answer; returns the problems. */
export function checkOutput(expected: Expected, output: string): string[] {
  const lines = output.replace(/\n+$/, "").split("\n");
  const problems: string[] = [];
  if (expected.status !== undefined) {
    const status = lines.pop();
    if (status !== String(expected.status)) {
      problems.push(`status: expected ${expected.status}, got ${JSON.stringify(status)}`);
    }
  }
  const body = lines.join("\n").trim();
  if (expected.body === undefined) return problems;
  if (/^[[{]/.test(expected.body)) {
    let pattern: unknown;
    try {
      pattern = expectedJson(expected.body);
    } catch (error) {
      return [...problems, `the expected answer is not JSON: ${(error as Error).message}`];
    }
    let actual: unknown;
    try {
      actual = JSON.parse(body);
    } catch {
      return [...problems, `the answer is not JSON: ${JSON.stringify(body)}`];
    }
    problems.push(...mismatches(pattern, actual));
  } else if (!wildcard(expected.body).test(body)) {
    problems.push(`expected ${JSON.stringify(expected.body)}, got ${JSON.stringify(body)}`);
  }
  return problems;
}

/** Runs one document's steps in one bash session; returns the failures. */
async function runDocument(
  file: string,
  blocks: ShellBlock[],
  env: Record<string, string>,
): Promise<string[]> {
  const work = await Deno.makeTempDir({ prefix: "wa-docs-" });
  const all = blocks.flatMap(steps);
  let driver = "set -euo pipefail\n";
  for (const [i, step] of all.entries()) {
    await Deno.writeTextFile(`${work}/step${i}.sh`, step.script + "\n");
    driver += `echo ${i} > ${work}/progress\n`;
    driver += `source ${work}/step${i}.sh > ${work}/out${i} 2> ${work}/err${i} < /dev/null\n`;
  }
  driver += `echo done > ${work}/progress\n`;
  const child = new Deno.Command("bash", {
    args: ["--noprofile", "--norc", "-c", driver],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  // A document gets DOC_TIMEOUT_MS; past it the session and everything it started are stopped.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<undefined>((r) =>
    timer = setTimeout(() => r(undefined), DOC_TIMEOUT_MS)
  );
  let result = await Promise.race([child.status, timedOut]);
  clearTimeout(timer);
  if (result === undefined) {
    for (const p of descendants(child.pid)) {
      try {
        Deno.kill(p.pid, "SIGKILL");
      } catch { /* gone */ }
    }
    child.kill("SIGKILL");
    result = await child.status;
  }
  const failures: string[] = [];
  const progress = (await Deno.readTextFile(`${work}/progress`).catch(() => "0")).trim();
  const read = (name: string) => Deno.readTextFile(`${work}/${name}`).catch(() => "");
  const ran = progress === "done" ? all.length : Number(progress) + 1;
  for (let i = 0; i < ran; i++) {
    const step = all[i];
    const out = await read(`out${i}`);
    if (progress !== "done" && i === ran - 1) {
      failures.push(
        `${file}:${step.line}: the example failed (exit ${result.code}${
          result.signal ? `, ${result.signal}: over ${DOC_TIMEOUT_MS} ms` : ""
        }):\n${out}${await read(
          `err${i}`,
        )}`,
      );
      break;
    }
    if (step.expected) {
      const problems = checkOutput(step.expected, out);
      if (problems.length > 0) {
        failures.push(
          `${file}:${step.expected.line}: the answer differs from the one shown:\n  ` +
            `${problems.join("\n  ")}\nprinted:\n${out}${await read(`err${i}`)}`,
        );
      }
    }
  }
  const checked = all.slice(0, ran).filter((s) => s.expected).length;
  console.log(
    `${file}: ${blocks.length} blocks, ${ran}/${all.length} steps run, ${checked} answers checked`,
  );
  if (failures.length === 0) await Deno.remove(work, { recursive: true }).catch(() => {});
  return failures;
}

/** Starts `./scripts/dev.sh` as the README's server block does; resolves once it is serving. */
function startDevStack(env: Record<string, string>): StartedCommand {
  const child = new Deno.Command("bash", {
    args: ["scripts/dev.sh"],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  void collect(child.stdout).catch(() => {});
  void collect(child.stderr).catch(() => {});
  const started: StartedCommand = {
    child,
    output: () => text,
    async waitForOutput(pattern, timeoutMs = 180_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = text.match(pattern);
        if (match) return match;
        const done = await Promise.race([
          child.status.then(() => true),
          new Promise<false>((r) => setTimeout(() => r(false), 100)),
        ]);
        if (done || Date.now() > deadline) {
          throw new Error(`./scripts/dev.sh did not start (no ${pattern}):\n${text}`);
        }
      }
    },
  };
  return started;
}

Deno.test("the examples' fences: sh, or sh server / deploy / long, and nothing else", async () => {
  const problems: string[] = [];
  for (const file of await documents()) {
    for (const block of shellBlocks(file, await Deno.readTextFile(`${ROOT}${file}`))) {
      const where = `${file}:${block.line}`;
      if (block.lang !== "sh") problems.push(`${where}: \`\`\`${block.lang}: write \`\`\`sh`);
      else if (block.tag !== "" && !SKIPPED_TAGS.has(block.tag)) {
        problems.push(
          `${where}: unknown info string "${block.tag}" (allowed: server, deploy, long)`,
        );
      }
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("blocks that cannot run here are valid bash", async () => {
  const listed: string[] = [];
  for (const file of await documents()) {
    for (const block of shellBlocks(file, await Deno.readTextFile(`${ROOT}${file}`))) {
      if (!SKIPPED_TAGS.has(block.tag)) continue;
      listed.push(`${file}:${block.line} (sh ${block.tag})`);
      const check = await new Deno.Command("bash", {
        args: ["-n"],
        stdin: "piped",
        stderr: "piped",
        stdout: "null",
      }).spawn();
      const writer = check.stdin.getWriter();
      await writer.write(new TextEncoder().encode(block.text + "\n"));
      await writer.close();
      const { code, stderr } = await check.output();
      assert.equal(code, 0, `${file}:${block.line}: ${new TextDecoder().decode(stderr)}`);
    }
  }
  console.log(`not run here, syntax checked:\n  ${listed.join("\n  ")}`);
  // The README names how to start the stack; that is what the next test starts.
  const readme = shellBlocks("README.md", await Deno.readTextFile(`${ROOT}README.md`));
  assert.match(readme.find((b) => b.tag === "server")?.text ?? "", /^\.\/scripts\/dev\.sh\b/);
});

Deno.test("the expected-answer comments are read as intended", () => {
  const [step] = steps({
    file: "x",
    line: 1,
    lang: "sh",
    tag: "",
    text: 'curl x\n# 201 {"a":"…","b":3,\n#   "c":[1,…],"d":…}\necho',
  });
  assert.deepEqual(step.expected, {
    status: 201,
    body: '{"a":"…","b":3,"c":[1,…],"d":…}',
    line: 3,
  });
  assert.deepEqual(
    checkOutput(step.expected!, '{"a":"z","b":3,"c":[1,2],"d":null,"e":1}\n201\n'),
    [],
  );
  assert.equal(checkOutput(step.expected!, '{"a":"z","b":4,"c":[1],"d":1}\n200\n').length, 2);
  assert.deepEqual(mismatches(expectedJson('{"id":"wamid.HBg…"}'), { id: "wamid.HBgX" }), []);
  assert.deepEqual(checkOutput({ body: "[…]", line: 1 }, "[1,2]"), []);
});

Deno.test({
  name: "every shell example of README.md and docs/*.md runs against ./scripts/dev.sh",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const state = await Deno.makeTempDir({ prefix: "wa-docs-stack-" });
    await Deno.chmod(state, 0o755);
    const port = freePort();
    const pgPort = freePort();
    const denoDir = Deno.execPath().replace(/\/[^/]*$/, "");
    const base = childProcessEnv();
    const path = `${denoDir}:${base.PATH ?? "/usr/local/bin:/usr/bin:/bin"}`;
    const stackEnv = {
      ...base,
      PATH: path,
      LOCAL_STATE_DIR: state,
      PG_PORT: String(pgPort),
      PORT: String(port),
      LOG_LEVEL: "error",
    };
    const dev = startDevStack(stackEnv);
    const before = () => descendants(dev.child.pid);
    let started: ReturnType<typeof before> = [];
    try {
      await dev.waitForOutput(/Access tokens: deno task jwt/);
      started = before();
      const readerEnv = { ...base, PATH: path, PORT: String(port), PG_PORT: String(pgPort) };
      const failures: string[] = [];
      let ran = 0;
      for (const file of await documents()) {
        const blocks = shellBlocks(file, await Deno.readTextFile(`${ROOT}${file}`))
          .filter((b) => b.lang === "sh" && b.tag === "");
        if (blocks.length === 0) continue;
        ran += blocks.length;
        failures.push(...await runDocument(file, blocks, readerEnv));
      }
      assert.ok(ran > 0, "no example found");
      assert.equal(failures.length, 0, failures.join("\n\n"));
    } finally {
      Deno.kill(dev.child.pid, "SIGTERM");
      await exitOf(dev);
      killLeftovers(started);
      await Deno.remove(state, { recursive: true }).catch(() => {});
    }
  },
});
