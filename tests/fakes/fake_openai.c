/*
 * fake_openai: the OpenAI wire format (GET /v1/models, POST /v1/chat/completions,
 * POST /v1/embeddings), whole and streamed (SSE chat.completion.chunk events),
 * with tool calls when the request offers tools and the user asks about the weather.
 */
#include "fake.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mk_limits.h"

#define TOOL_ARGS "{\"city\":\"Moscow\"}"
/* Default embedding size: small, so tests and the semantic cache stay cheap. */
#define DEFAULT_DIMS 16

/* With --openai-key, requests need "Authorization: Bearer <key>". */
static bool authorized(fake_server *fs, mk_http_req *req)
{
    if (!fs->openai_key) return true;
    mk_slice auth = mk_http_req_header(req, "Authorization");
    size_t klen = strlen(fs->openai_key);
    if (auth.len != 7 + klen || memcmp(auth.ptr, "Bearer ", 7) != 0 || memcmp(auth.ptr + 7, fs->openai_key, klen) != 0) {
        fake_send_error(fs, req, FAKE_WIRE_OPENAI, 401,
                        auth.len ? "Incorrect API key provided." : "You didn't provide an API key.", NULL);
        return false;
    }
    return true;
}

void fake_openai_models(fake_server *fs, mk_http_req *req)
{
    static const char *const ids[] = {"gpt-4o-mini", "gpt-4o", "fake-model", "text-embedding-3-small"};
    if (!authorized(fs, req)) return;
    /* A deployment that is down (a failing mode) fails its model list too: this is
     * the path Mayak's active health checks probe on OpenAI-compatible servers. */
    if (fs->mode.opts.status >= 400) {
        fake_send_error(fs, req, FAKE_WIRE_OPENAI, fs->mode.opts.status, "the fake is down (mode)", NULL);
        return;
    }
    mk_buf b = MK_BUF_INIT;
    mk_buf_append_str(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        mk_buf_printf(&b, "%s{\"id\":\"%s\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mayak-fake\"}",
                      i ? "," : "", ids[i]);
    mk_buf_append_str(&b, "]}");
    fake_send_json(req, 200, b.data, b.len);
    mk_buf_release(&b);
}

/* Name of the first tool ("tools":[{"type":"function","function":{"name":...}}]). */
static const char *first_tool(json_object *body)
{
    json_object *tools;
    if (!json_object_object_get_ex(body, "tools", &tools) || !json_object_is_type(tools, json_type_array) ||
        json_object_array_length(tools) == 0)
        return NULL;
    json_object *fn;
    json_object *t0 = json_object_array_get_idx(tools, 0);
    const char *name = NULL;
    if (json_object_is_type(t0, json_type_object) && json_object_object_get_ex(t0, "function", &fn))
        name = fake_json_str(fn, "name");
    return name ? name : "tool";
}

/* Opening of one chat.completion.chunk event, up to and including "choices":[ */
static void chunk_open(mk_buf *b, const char *id, long created, const mk_buf *model)
{
    mk_buf_printf(b, "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%ld,\"model\":", id,
                  created);
    mk_buf_append(b, model->data, model->len);
    mk_buf_append_str(b, ",\"system_fingerprint\":\"fp_fake\",\"choices\":[");
}

static void chunk_close(fake_plan *p, bool usage_null)
{
    mk_buf_append_str(&p->body, usage_null ? "],\"usage\":null}\n\n" : "]}\n\n");
    fake_plan_end_piece(p);
}

static void append_usage(mk_buf *b, int prompt, int completion)
{
    mk_buf_printf(b, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}", prompt,
                  completion, prompt + completion);
}

void fake_openai_chat(fake_server *fs, mk_http_req *req)
{
    if (!authorized(fs, req)) return;
    json_object *body = fake_parse_json(req->body.ptr, req->body.len);
    if (!body || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        fake_send_error(fs, req, FAKE_WIRE_OPENAI, 400, "We could not parse the JSON body of your request.", NULL);
        return;
    }
    const char *model_name = fake_json_str(body, "model");
    if (!model_name || !model_name[0]) {
        json_object_put(body);
        fake_send_error(fs, req, FAKE_WIRE_OPENAI, 400, "you must provide a model parameter", NULL);
        return;
    }
    fake_chat c;
    if (fake_chat_prepare(fs, req, FAKE_WIRE_OPENAI, body, "content", &c)) {
        json_object_put(body);
        return;
    }
    if (c.opts.status && (c.opts.status < 200 || c.opts.status > 299)) {
        fake_send_error(fs, req, FAKE_WIRE_OPENAI, c.opts.status, "fake provider: scripted failure", &c.opts);
        fake_chat_release(&c);
        json_object_put(body);
        return;
    }
    int status = c.opts.status ? c.opts.status : 200;
    const char *tool = first_tool(body);
    bool tool_call = tool && c.wants_weather && !c.last_is_tool;
    bool include_usage = false;
    json_object *so, *iu;
    if (json_object_object_get_ex(body, "stream_options", &so) && json_object_is_type(so, json_type_object) &&
        json_object_object_get_ex(so, "include_usage", &iu))
        include_usage = json_object_get_boolean(iu);

    mk_buf model = MK_BUF_INIT, tool_name = MK_BUF_INIT;
    mk_buf_append_json_string(&model, model_name, strlen(model_name));
    if (tool) mk_buf_append_json_string(&tool_name, tool, strlen(tool));
    char id[32], call_id[32];
    snprintf(id, sizeof id, "chatcmpl-%s", req->request_id);
    snprintf(call_id, sizeof call_id, "call_%s", req->request_id);
    long created = (long)time(NULL);

    size_t *ends = NULL, nchunks = 0;
    int completion;
    if (tool_call) {
        completion = fake_tokens(strlen(tool) + strlen(TOOL_ARGS));
    } else {
        fake_split_chunks(&c.answer, c.opts.chunks, &ends, &nchunks);
        completion = fake_tokens(c.answer.len);
    }
    const char *answer = c.answer.data ? c.answer.data : "";

    fake_plan p;
    if (!c.stream) {
        fake_plan_init(&p, status, "application/json", false);
        mk_buf *b = &p.body;
        mk_buf_printf(b, "{\"id\":\"%s\",\"object\":\"chat.completion\",\"created\":%ld,\"model\":", id, created);
        mk_buf_append(b, model.data, model.len);
        mk_buf_append_str(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",");
        if (tool_call) {
            mk_buf_printf(b, "\"content\":null,\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":",
                          call_id);
            mk_buf_append(b, tool_name.data, tool_name.len);
            mk_buf_append_str(b, ",\"arguments\":");
            mk_buf_append_json_string(b, TOOL_ARGS, strlen(TOOL_ARGS));
            mk_buf_append_str(b, "}}],\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],");
        } else {
            mk_buf_append_str(b, "\"content\":");
            mk_buf_append_json_string(b, answer, c.answer.len);
            mk_buf_append_str(b, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],");
        }
        append_usage(b, c.prompt_tokens, completion);
        mk_buf_append_str(b, ",\"system_fingerprint\":\"fp_fake\"}");
    } else {
        fake_plan_init(&p, status, "text/event-stream; charset=utf-8", true);
        mk_buf *b = &p.body;
        /* 1: the role (and, for a tool call, the call's id and name) */
        chunk_open(b, id, created, &model);
        if (tool_call) {
            mk_buf_printf(b, "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,"
                             "\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":",
                          call_id);
            mk_buf_append(b, tool_name.data, tool_name.len);
            mk_buf_append_str(b, ",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}");
        } else {
            mk_buf_append_str(b, "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},"
                                 "\"logprobs\":null,\"finish_reason\":null}");
        }
        chunk_close(&p, include_usage);
        /* 2: the content, or the arguments in three parts */
        if (tool_call) {
            static const char args[] = TOOL_ARGS;
            static const size_t cuts[] = {0, 4, 11, sizeof args - 1};
            for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++) {
                chunk_open(b, id, created, &model);
                mk_buf_append_str(b, "{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":");
                mk_buf_append_json_string(b, args + cuts[i], cuts[i + 1] - cuts[i]);
                mk_buf_append_str(b, "}}]},\"logprobs\":null,\"finish_reason\":null}");
                chunk_close(&p, include_usage);
            }
        } else {
            for (size_t i = 0; i < nchunks; i++) {
                size_t s = i ? ends[i - 1] : 0;
                chunk_open(b, id, created, &model);
                mk_buf_append_str(b, "{\"index\":0,\"delta\":{\"content\":");
                mk_buf_append_json_string(b, answer + s, ends[i] - s);
                mk_buf_append_str(b, "},\"logprobs\":null,\"finish_reason\":null}");
                chunk_close(&p, include_usage);
            }
        }
        /* 3: the finish reason */
        chunk_open(b, id, created, &model);
        mk_buf_printf(b, "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}",
                      tool_call ? "tool_calls" : "stop");
        chunk_close(&p, include_usage);
        /* 4: usage, when asked for */
        if (include_usage) {
            chunk_open(b, id, created, &model);
            mk_buf_append_str(b, "],");
            append_usage(b, c.prompt_tokens, completion);
            mk_buf_append_str(b, "}\n\n");
            fake_plan_end_piece(&p);
        }
        mk_buf_append_str(b, "data: [DONE]\n\n");
        fake_plan_end_piece(&p);
    }
    fake_send(fs, req, &p, &c.opts);
    free(ends);
    mk_buf_release(&model);
    mk_buf_release(&tool_name);
    fake_chat_release(&c);
    json_object_put(body);
}

/* The text an embedding input stands for: a string, or a token array as its JSON. */
static void input_text(json_object *in, mk_buf *out)
{
    if (json_object_is_type(in, json_type_string)) {
        mk_buf_append(out, json_object_get_string(in), (size_t)json_object_get_string_len(in));
        return;
    }
    mk_buf_append_str(out, json_object_to_json_string_ext(in, JSON_C_TO_STRING_PLAIN));
}

void fake_embeddings_reply(fake_server *fs, mk_http_req *req, enum fake_wire wire)
{
    json_object *body = fake_parse_json(req->body.ptr, req->body.len);
    json_object *input, *v;
    if (!body || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        fake_send_error(fs, req, wire, 400, "We could not parse the JSON body of your request.", NULL);
        return;
    }
    const char *model = fake_json_str(body, "model");
    if (!model && wire == FAKE_WIRE_GIGACHAT) model = "Embeddings";
    if (!model || !json_object_object_get_ex(body, "input", &input)) {
        json_object_put(body);
        fake_send_error(fs, req, wire, 400, "'model' and 'input' are required", NULL);
        return;
    }
    /* One input or a list: a string, an array of strings, a token array, an array
     * of token arrays. An array of numbers is one input. */
    json_object *list = NULL;
    bool single = !json_object_is_type(input, json_type_array) ||
                  (json_object_array_length(input) > 0 &&
                   json_object_is_type(json_object_array_get_idx(input, 0), json_type_int));
    if (single) {
        list = json_object_new_array();
        json_object_array_add(list, json_object_get(input));
    } else {
        list = json_object_get(input);
    }
    size_t n = json_object_array_length(list);
    int dims = DEFAULT_DIMS;
    bool base64 = false;
    const char *err = NULL;
    if (n == 0 || n > MK_MAX_EMBED_INPUTS) err = "'input' must hold 1 to 2048 items";
    for (size_t i = 0; !err && i < n; i++) {
        json_object *it = json_object_array_get_idx(list, i);
        if (!json_object_is_type(it, json_type_string) && !json_object_is_type(it, json_type_array))
            err = "'input' items must be strings or token arrays";
    }
    if (!err && json_object_object_get_ex(body, "dimensions", &v)) {
        int64_t d = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
        if (d < 1 || d > FAKE_MAX_DIMS) err = "'dimensions' must be an integer from 1 to 8192";
        else dims = (int)d;
    }
    const char *fmt = fake_json_str(body, "encoding_format");
    if (!err && fmt) {
        if (strcmp(fmt, "base64") == 0) base64 = true;
        else if (strcmp(fmt, "float") != 0) err = "'encoding_format' must be 'float' or 'base64'";
    }
    if (err) {
        json_object_put(list);
        json_object_put(body);
        fake_send_error(fs, req, wire, 400, err, NULL);
        return;
    }

    fake_opts o;
    fake_opts_from_mode(fs, &o);
    char derr[160];
    mk_buf text = MK_BUF_INIT, clean = MK_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(list, i);
        if (!json_object_is_type(it, json_type_string)) continue;
        if (fake_directive_apply(json_object_get_string(it), (size_t)json_object_get_string_len(it), &o, derr,
                                 sizeof derr)) {
            json_object_put(list);
            json_object_put(body);
            fake_send_error(fs, req, wire, 400, derr, NULL);
            return;
        }
    }
    if (o.status && (o.status < 200 || o.status > 299)) {
        json_object_put(list);
        json_object_put(body);
        fake_send_error(fs, req, wire, o.status, "fake provider: scripted failure", &o);
        return;
    }
    float *vec = malloc((size_t)dims * sizeof *vec);
    if (!vec) {
        json_object_put(list);
        json_object_put(body);
        fake_send_error(fs, req, wire, 500, "out of memory", NULL);
        return;
    }
    fake_plan p;
    fake_plan_init(&p, o.status ? o.status : 200, "application/json", false);
    mk_buf *b = &p.body;
    mk_buf_append_str(b, "{\"object\":\"list\",\"data\":[");
    int tokens = 0;
    for (size_t i = 0; i < n; i++) {
        mk_buf_reset(&text);
        mk_buf_reset(&clean);
        input_text(json_object_array_get_idx(list, i), &text);
        fake_strip_directive(text.data ? text.data : "", text.len, &clean);
        int t = fake_tokens(text.len);
        tokens += t;
        fake_embed(clean.data ? clean.data : "", clean.len, dims, vec);
        mk_buf_printf(b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        fake_append_vector(b, vec, dims, base64);
        if (wire == FAKE_WIRE_GIGACHAT) mk_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%d}", t);
        mk_buf_append_char(b, '}');
    }
    mk_buf_append_str(b, "],\"model\":");
    mk_buf_append_json_string(b, model, strlen(model));
    mk_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}", tokens, tokens);
    free(vec);
    mk_buf_release(&text);
    mk_buf_release(&clean);
    json_object_put(list);
    json_object_put(body);
    fake_send(fs, req, &p, &o);
}

void fake_openai_embeddings(fake_server *fs, mk_http_req *req)
{
    if (!authorized(fs, req)) return;
    fake_embeddings_reply(fs, req, FAKE_WIRE_OPENAI);
}
