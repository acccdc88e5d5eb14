/*
 * mk_limits: every hard limit of Mayak in one place, each with the reason beside it.
 * A limit protects memory or time from a hostile or broken peer; where a limit is
 * also configurable, the value here is the default and the ceiling.
 */
#ifndef MK_LIMITS_H
#define MK_LIMITS_H

/* --- HTTP server ------------------------------------------------------------ */
/* Total bytes of the request line plus headers. nginx's default large buffer is 8 KB
 * x 4; real clients (SDKs, browsers with cookies) stay well under 16 KB. */
#define MK_MAX_HEADER_BYTES (16 * 1024)
/* Header count: SDKs send ~15; 100 leaves room for proxies without letting a
 * peer make us index thousands. */
#define MK_MAX_HEADERS 100
/* Request body: a chat request with a long context is ~1 MB of JSON at 128k tokens;
 * 8 MB leaves room for base64 images of modest size. */
#define MK_MAX_BODY_BYTES (8 * 1024 * 1024)
/* URL length including the query string. */
#define MK_MAX_URL_BYTES 8192
/* A client must send the full header block within this time (slowloris). */
#define MK_HEADER_TIMEOUT_MS 10000
/* And the body within this time once headers arrived (slow body upload). */
#define MK_BODY_TIMEOUT_MS 30000
/* Idle keep-alive connections are closed after this. */
#define MK_KEEPALIVE_TIMEOUT_MS 75000
/* Open connections per server; beyond it new ones are accepted and closed at once
 * so the listen queue does not stall. 10k idle connections must fit. */
#define MK_MAX_CONNECTIONS 65536
/* Pipelined requests buffered beyond the one in flight; more is abuse. */
#define MK_MAX_PIPELINED_BYTES (64 * 1024)
/* Bytes queued for a slow reader before we stop generating (stream backpressure). */
#define MK_MAX_WRITE_QUEUE_BYTES (4 * 1024 * 1024)

/* --- JSON requests ---------------------------------------------------------- */
/* Nesting depth: OpenAI requests nest 6-8 levels (tools with JSON Schema deeper);
 * 64 fits real schemas and stops stack-exhaustion payloads. */
#define MK_MAX_JSON_DEPTH 64
/* Messages in one chat request. */
#define MK_MAX_MESSAGES 4096
/* Inputs in one embeddings request (OpenAI allows 2048). */
#define MK_MAX_EMBED_INPUTS 2048
/* Length of a model name, tenant, key id and other identifiers. */
#define MK_MAX_NAME_BYTES 256

/* --- Upstream --------------------------------------------------------------- */
/* Bytes of a non-streamed upstream reply we buffer. */
#define MK_MAX_UPSTREAM_BODY_BYTES (32 * 1024 * 1024)
/* One SSE event or NDJSON line from an upstream stream. */
#define MK_MAX_UPSTREAM_EVENT_BYTES (4 * 1024 * 1024)
/* Default timeouts; each is configurable per model group. */
#define MK_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define MK_DEFAULT_FIRST_TOKEN_TIMEOUT_MS 60000
#define MK_DEFAULT_CHUNK_GAP_TIMEOUT_MS 30000
#define MK_DEFAULT_TOTAL_TIMEOUT_MS 600000
/* Attempts per request across deployments (first try + retries). */
#define MK_MAX_ATTEMPTS 8
/* Connections open at once to one upstream host. A streaming LLM call holds its
 * connection for the whole answer, so this bounds concurrent streams per provider:
 * 10,000 held streams must fit. Beyond it calls queue inside libcurl. */
#define MK_UPSTREAM_MAX_HOST_CONNECTIONS 16384
/* Idle keep-alive connections kept for reuse across all hosts: enough for a burst at
 * 20k requests/s without re-handshaking, small enough not to hoard descriptors. */
#define MK_UPSTREAM_MAX_IDLE_CONNECTIONS 1024

/* --- Config ----------------------------------------------------------------- */
#define MK_MAX_CONFIG_BYTES (4 * 1024 * 1024)
#define MK_MAX_PROVIDERS 256
#define MK_MAX_MODEL_GROUPS 256
#define MK_MAX_DEPLOYMENTS_PER_GROUP 64
#define MK_MAX_TAGS 32
#define MK_MAX_EXTRA_HEADERS 32

/* --- Shutdown --------------------------------------------------------------- */
/* SIGTERM: in-flight requests and streams get this long before we exit anyway. */
#define MK_DEFAULT_DRAIN_TIMEOUT_MS 30000

#endif
