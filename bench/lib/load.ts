/**
 * HTTP load with `wrk` (or `autocannon` from npm when wrk cannot be installed), and the database
 * ceiling with `pgbench` running the same SQL apply function.
 */
import { createHmac } from "node:crypto";
import { findPostgresBin } from "../../scripts/lib/postgres_server.ts";

/** One load run's figures. */
export interface LoadFigure {
  tool: "wrk" | "autocannon";
  connections: number;
  durationS: number;
  requests: number;
  requestsPerS: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: number;
  /** Unique path only: more requests than prepared unique bodies, so later ones were repeats. */
  cycled?: boolean;
}

/** A pgbench figure. */
export interface PgbenchFigure {
  clients: number;
  durationS: number;
  tps: number;
  latencyAvgMs: number;
}

async function run(
  cmd: string,
  args: string[],
): Promise<{ ok: boolean; out: string; err: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const d = new TextDecoder();
    return { ok: out.success, out: d.decode(out.stdout), err: d.decode(out.stderr) };
  } catch (error) {
    return { ok: false, out: "", err: String(error) };
  }
}

/** Makes `wrk` available: already on PATH, or `apt-get install -y wrk` when root. */
export async function ensureWrk(log: (line: string) => void): Promise<boolean> {
  if ((await run("wrk", ["--version"])).out.includes("wrk")) return true;
  const version = await run("wrk", ["-v"]);
  if (`${version.out}${version.err}`.includes("wrk ")) return true;
  if (Deno.uid() !== 0) return false;
  log("installing wrk (apt-get install -y wrk)");
  let install = await run("apt-get", ["install", "-y", "-qq", "wrk"]);
  if (!install.ok) {
    await run("apt-get", ["update", "-qq"]);
    install = await run("apt-get", ["install", "-y", "-qq", "wrk"]);
  }
  return install.ok;
}

/** `sha256=<hex>` of a body. */
export function signatureOf(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

const luaString = (s: string) => JSON.stringify(s); // JSON string escapes are valid Lua escapes here.

const DONE = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,"socket":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
`;

/** Runs wrk against `url`: one fixed signed body, or a file of unique `signature\tbody` lines. */
export async function wrkLoad(options: {
  url: string;
  connections: number;
  durationS: number;
  workDir: string;
  body?: { text: string; signature?: string };
  uniqueFile?: { path: string; lines: number };
}): Promise<LoadFigure> {
  const threads = 2;
  let script: string;
  if (options.body) {
    script = `wrk.method = "POST"
wrk.body = ${luaString(options.body.text)}
wrk.headers["Content-Type"] = "application/json"
${
      options.body.signature
        ? `wrk.headers["X-Webhook-Signature"] = ${luaString(options.body.signature)}`
        : ""
    }
${DONE}`;
  } else {
    script = `local n = 0
setup = function(thread) thread:set("tid", n); n = n + 1 end
local sigs, bodies, counter = {}, {}, 0
init = function(args)
  for line in io.lines(${luaString(options.uniqueFile!.path)}) do
    local tab = string.find(line, "\\t", 1, true)
    sigs[#sigs + 1] = string.sub(line, 1, tab - 1)
    bodies[#bodies + 1] = string.sub(line, tab + 1)
  end
end
request = function()
  local i = (counter * ${threads} + tid) % #bodies + 1
  counter = counter + 1
  return wrk.format("POST", nil,
    { ["Content-Type"] = "application/json", ["X-Webhook-Signature"] = sigs[i] }, bodies[i])
end
${DONE}`;
  }
  const scriptPath = `${options.workDir}/wrk-${crypto.randomUUID()}.lua`;
  await Deno.writeTextFile(scriptPath, script);
  const result = await run("wrk", [
    `-t${threads}`,
    `-c${options.connections}`,
    `-d${options.durationS}s`,
    "--timeout",
    "10s",
    "-s",
    scriptPath,
    options.url,
  ]);
  const line = /WRKJSON (\{.*\})/.exec(result.out);
  if (!line) throw new Error(`wrk failed: ${result.err || result.out}`.slice(0, 500));
  const j = JSON.parse(line[1]);
  return {
    tool: "wrk",
    connections: options.connections,
    durationS: options.durationS,
    requests: j.requests,
    requestsPerS: j.requests / (j.duration_us / 1e6),
    p50Ms: j.p50_us / 1000,
    p99Ms: j.p99_us / 1000,
    non2xx: j.non2xx,
    socketErrors: j.socket,
    cycled: options.uniqueFile ? j.requests > options.uniqueFile.lines : undefined,
  };
}

/** Runs autocannon (npm, through npx) with one fixed body: the fallback when wrk is missing. */
export async function autocannonLoad(options: {
  url: string;
  connections: number;
  durationS: number;
  body: { text: string; signature?: string };
}): Promise<LoadFigure> {
  const args = [
    "--yes",
    "autocannon@8.0.0",
    "-c",
    String(options.connections),
    "-d",
    String(options.durationS),
    "-m",
    "POST",
    "-H",
    "content-type=application/json",
    "-b",
    options.body.text,
    "--json",
  ];
  if (options.body.signature) args.push("-H", `x-webhook-signature=${options.body.signature}`);
  args.push(options.url);
  const result = await run("npx", args);
  if (!result.ok) throw new Error(`autocannon failed: ${result.err}`.slice(0, 500));
  const j = JSON.parse(result.out.slice(result.out.indexOf("{")));
  return {
    tool: "autocannon",
    connections: options.connections,
    durationS: options.durationS,
    requests: j.requests.total,
    requestsPerS: j.requests.average,
    p50Ms: j.latency.p50,
    p99Ms: j.latency.p99,
    non2xx: j.non2xx,
    socketErrors: j.errors + j.timeouts,
  };
}

/** Writes `count` unique signed join deliveries, one `signature\tbody` per line. */
export async function writeUniqueBodies(
  path: string,
  count: number,
  secret: string,
  prefix: number,
): Promise<void> {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const body = JSON.stringify({
      event: "join",
      groupJid: `120363${
        String(900_000_000_000 + prefix * 1000 + (i % 50)).padStart(12, "0")
      }@g.us`,
      participant: `9197${String(10_000_000 + i).slice(-8)}@s.whatsapp.net`,
      sessionId: "load",
    });
    lines.push(`${signatureOf(secret, body)}\t${body}`);
  }
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
}

/** Runs pgbench with a script calling the apply function with one new event per transaction. */
export async function pgbenchApply(options: {
  port: number;
  clients: number;
  durationS: number;
  workDir: string;
}): Promise<PgbenchFigure> {
  const bin = await findPostgresBin();
  const script = `${options.workDir}/apply.pgbench.sql`;
  await Deno.writeTextFile(
    script,
    `\\set g random(1, 999999999)
\\set p random(10000000, 99999999)
select idx, outcome from public.apply_whatsapp_membership_events(jsonb_build_array(jsonb_build_object('group_jid', '120364' || lpad(:g::text, 12, '0') || '@g.us', 'phone', '+9196' || :p, 'action', 'join', 'event_at', now())));
`,
  );
  const result = await run(`${bin}/pgbench`, [
    "-n",
    "-M",
    "extended",
    "-h",
    "127.0.0.1",
    "-p",
    String(options.port),
    "-U",
    "postgres",
    "-c",
    String(options.clients),
    "-j",
    String(Math.min(options.clients, 2)),
    "-T",
    String(options.durationS),
    "-f",
    script,
    "postgres",
  ]);
  const tps = /tps = ([0-9.]+)/.exec(result.out);
  const latency = /latency average = ([0-9.]+) ms/.exec(result.out);
  if (!result.ok || !tps) throw new Error(`pgbench failed: ${result.err}`.slice(0, 500));
  return {
    clients: options.clients,
    durationS: options.durationS,
    tps: Number(tps[1]),
    latencyAvgMs: latency ? Number(latency[1]) : NaN,
  };
}
