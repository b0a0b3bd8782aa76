/**
 * The bare-handler ceiling: a `Deno.serve` handler that parses the same JSON body and answers,
 * with nothing else. Environment: PORT.
 */
if (import.meta.main) {
  Deno.serve({
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? 0),
    onListen: () => {},
  }, async (request) => {
    const body = await request.json() as { event?: unknown };
    return Response.json({ success: true, event: body.event ?? null });
  });
}
