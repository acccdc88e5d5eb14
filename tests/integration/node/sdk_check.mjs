// sdk_check: drives Mayak with the official `openai` npm SDK, unchanged, the way an
// application would: list models, a plain chat completion, a streamed one with usage,
// tool calls (plain and streamed), embeddings (the SDK asks for base64 and decodes
// it itself) and an error mapped to the SDK's typed exception.
//
// Usage: MAYAK_URL=http://127.0.0.1:PORT [MAYAK_MODEL=default] node sdk_check.mjs
// Expects Mayak to route MAYAK_MODEL to the fake provider (tests/fakes/), whose answers
// echo the prompt and which calls the first tool when the prompt says "weather".
//
// Prints one JSON object {ok, sdk_version, checks: {name: {ok, ...details}}} on stdout
// and exits 0 only when every check passed (1 on a failed check, 2 on bad usage).
import OpenAI from "openai";
import { VERSION as SDK_VERSION } from "openai/version";

const base = process.env.MAYAK_URL;
if (!base) {
  console.error("sdk_check: set MAYAK_URL (e.g. http://127.0.0.1:8080)");
  process.exit(2);
}
const MODEL = process.env.MAYAK_MODEL || "default";

// Retries off so a failure shows as itself rather than after backoff; a bounded
// timeout so a hung gateway fails the check instead of hanging the test.
const client = new OpenAI({
  baseURL: base.replace(/\/+$/, "") + "/v1",
  apiKey: "unused",
  maxRetries: 0,
  timeout: 20000,
});

const checks = {};

function assert(cond, what) {
  if (!cond) throw new Error("assertion failed: " + what);
}

async function check(name, fn) {
  try {
    const details = (await fn()) || {};
    checks[name] = { ok: true, ...details };
  } catch (e) {
    checks[name] = {
      ok: false,
      error: String(e && e.message ? e.message : e),
      error_class: e && e.constructor ? e.constructor.name : typeof e,
      status: e && e.status !== undefined ? e.status : null,
    };
  }
}

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    },
  },
};

await check("models_list", async () => {
  const ids = [];
  // The page is an async iterable over every model, as applications use it.
  for await (const m of client.models.list()) {
    assert(typeof m.id === "string" && m.id.length > 0, "model id is a non-empty string");
    assert(m.object === "model", `model object is "model" (got ${m.object})`);
    ids.push(m.id);
  }
  assert(ids.includes(MODEL), `models include ${MODEL} (got ${JSON.stringify(ids)})`);
  return { ids };
});

await check("chat", async () => {
  const r = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "hello from the sdk" }],
  });
  assert(r.object === "chat.completion", `object is chat.completion (got ${r.object})`);
  const c = r.choices[0];
  assert(c && c.message.role === "assistant", "first choice is an assistant message");
  assert(typeof c.message.content === "string" && c.message.content.includes("hello from the sdk"),
    `content echoes the prompt (got ${JSON.stringify(c.message.content)})`);
  assert(c.finish_reason === "stop", `finish_reason stop (got ${c.finish_reason})`);
  assert(r.usage && r.usage.total_tokens > 0, "usage.total_tokens > 0");
  return { content: c.message.content, total_tokens: r.usage.total_tokens };
});

await check("chat_stream", async () => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "stream please [[fake chunks=6 interval_ms=5]]" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let chunks = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    chunks++;
    assert(chunk.object === "chat.completion.chunk", `chunk object (got ${chunk.object})`);
    if (chunk.usage) usage = chunk.usage;
    for (const ch of chunk.choices) {
      if (ch.delta && typeof ch.delta.content === "string") text += ch.delta.content;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  assert(chunks >= 6, `at least 6 chunks (got ${chunks})`);
  assert(text.includes("stream please"), `concatenated deltas echo the prompt (got ${JSON.stringify(text)})`);
  assert(finish === "stop", `finish_reason stop (got ${finish})`);
  assert(usage && usage.completion_tokens > 0 && usage.total_tokens > 0, "usage chunk arrived last");
  return { text, chunks, total_tokens: usage.total_tokens };
});

await check("tool_calls", async () => {
  const r = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "what is the weather in the capital?" }],
    tools: [WEATHER_TOOL],
  });
  const c = r.choices[0];
  assert(c.finish_reason === "tool_calls", `finish_reason tool_calls (got ${c.finish_reason})`);
  const call = c.message.tool_calls && c.message.tool_calls[0];
  assert(call && call.type === "function" && call.function.name === "get_weather", "calls get_weather");
  const args = JSON.parse(call.function.arguments);
  assert(args.city === "Moscow", `arguments city Moscow (got ${call.function.arguments})`);

  // The tool's result goes back and the model answers with it.
  const r2 = await client.chat.completions.create({
    model: MODEL,
    messages: [
      { role: "user", content: "what is the weather in the capital?" },
      c.message,
      { role: "tool", tool_call_id: call.id, content: "minus five and snow" },
    ],
    tools: [WEATHER_TOOL],
  });
  const answer = r2.choices[0].message.content;
  assert(typeof answer === "string" && answer.includes("minus five and snow"),
    `the answer uses the tool result (got ${JSON.stringify(answer)})`);
  return { call_id: call.id, arguments: args, answer };
});

await check("tool_calls_stream", async () => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "weather please" }],
    tools: [WEATHER_TOOL],
    stream: true,
  });
  let name = "";
  let args = "";
  let finish = null;
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      for (const tc of (ch.delta && ch.delta.tool_calls) || []) {
        if (tc.function && tc.function.name) name += tc.function.name;
        if (tc.function && tc.function.arguments) args += tc.function.arguments;
      }
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  assert(name === "get_weather", `streamed tool name (got ${JSON.stringify(name)})`);
  assert(JSON.parse(args).city === "Moscow", `streamed argument pieces concatenate (got ${args})`);
  assert(finish === "tool_calls", `finish_reason tool_calls (got ${finish})`);
  return { arguments: args };
});

await check("embeddings", async () => {
  // No encoding_format: the SDK asks for base64 and decodes the floats itself.
  const r = await client.embeddings.create({ model: MODEL, input: ["the printer is offline", "reset my password"] });
  assert(r.object === "list" && r.data.length === 2, `two embeddings (got ${r.data && r.data.length})`);
  const dims = r.data.map((d) => d.embedding.length);
  for (const [i, d] of r.data.entries()) {
    assert(d.index === i, `index ${i}`);
    assert(Array.isArray(d.embedding) && d.embedding.length > 0, "decoded vector is a non-empty array");
    assert(d.embedding.every((x) => Number.isFinite(x)), "every component is a finite number");
    const norm = Math.sqrt(d.embedding.reduce((s, x) => s + x * x, 0));
    assert(norm > 0.5 && norm < 1.5, `vector length is sane (norm ${norm})`);
  }
  assert(dims[0] === dims[1], "both vectors have the same dimension");
  assert(r.usage && r.usage.prompt_tokens > 0, "usage.prompt_tokens > 0");
  return { dims };
});

await check("error_unknown_model", async () => {
  let thrown = null;
  try {
    await client.chat.completions.create({
      model: "no-such-model-anywhere",
      messages: [{ role: "user", content: "hi" }],
    });
  } catch (e) {
    thrown = e;
  }
  assert(thrown !== null, "the SDK threw");
  assert(thrown instanceof OpenAI.NotFoundError,
    `NotFoundError (got ${thrown.constructor && thrown.constructor.name}: ${thrown.message})`);
  assert(thrown.status === 404, `status 404 (got ${thrown.status})`);
  assert(thrown.error && typeof thrown.error.message === "string", "error body parsed into e.error");
  return { status: thrown.status, code: thrown.code ?? null, message: thrown.error.message };
});

const ok = Object.values(checks).every((c) => c.ok);
console.log(JSON.stringify({ ok, sdk_version: SDK_VERSION, checks }, null, 2));
process.exit(ok ? 0 : 1);
