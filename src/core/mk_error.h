/*
 * mk_error: the one error table of Mayak.
 *
 * Every fallible function returns 0 or a negative MK_E* code from this table.
 * Each row gives the code's name, a message for people, the HTTP status the API
 * answers with, and the OpenAI error "type" so that API errors keep OpenAI's shape.
 * Adding an error is one row here; nothing else needs to change.
 */
#ifndef MK_ERROR_H
#define MK_ERROR_H

/*   name            value  http  openai type               message */
#define MK_ERROR_MAP(X)                                                                           \
    X(OK,                 0, 200, "",                       "success")                             \
    X(NOMEM,             -1, 500, "server_error",           "out of memory")                       \
    X(INVAL,             -2, 400, "invalid_request_error",  "invalid argument")                    \
    X(TOOBIG,            -3, 413, "invalid_request_error",  "input exceeds a configured limit")    \
    X(BADJSON,           -4, 400, "invalid_request_error",  "malformed JSON")                      \
    X(BADUTF8,           -5, 400, "invalid_request_error",  "invalid UTF-8")                       \
    X(NOTFOUND,          -6, 404, "invalid_request_error",  "not found")                           \
    X(METHOD,            -7, 405, "invalid_request_error",  "method not allowed")                  \
    X(IO,                -8, 500, "server_error",           "input/output error")                  \
    X(CONFIG,            -9, 500, "server_error",           "invalid configuration")               \
    X(UPSTREAM,         -10, 502, "api_error",              "upstream provider failed")            \
    X(UPSTREAM_TIMEOUT, -11, 504, "api_error",              "upstream provider timed out")         \
    X(UPSTREAM_BADREPLY,-12, 502, "api_error",              "upstream provider sent a malformed reply") \
    X(NO_DEPLOYMENT,    -13, 503, "api_error",              "no healthy deployment available")     \
    X(UNAUTHORIZED,     -14, 401, "authentication_error",   "missing or invalid credentials")      \
    X(FORBIDDEN,        -15, 403, "permission_error",       "not allowed")                         \
    X(RATE_LIMITED,     -16, 429, "rate_limit_error",       "rate limit exceeded")                 \
    X(UNAVAILABLE,      -17, 503, "api_error",              "service unavailable")                 \
    X(CANCELLED,        -18, 499, "api_error",              "request cancelled")                   \
    X(TIMEOUT,          -19, 408, "invalid_request_error",  "request timed out")                   \
    X(BUSY,             -20, 503, "api_error",              "server busy")                         \
    X(INTERNAL,         -21, 500, "server_error",           "internal error")                      \
    X(UPSTREAM_CLIENT,  -22, 400, "invalid_request_error",  "upstream provider rejected the request") \
    X(UPSTREAM_AUTH,    -23, 502, "api_error",              "upstream provider rejected Mayak's credentials") \
    X(UPSTREAM_RATE,    -24, 429, "rate_limit_error",       "upstream provider rate limit exceeded") \
    X(EXISTS,           -25, 409, "invalid_request_error",  "already exists")                      \
    X(CORRUPT,          -26, 500, "server_error",           "stored data is corrupt")          \
    X(GUARD_INJECTION,  -27, 400, "guard_violation",        "the request was blocked as a prompt injection") \
    X(GUARD_OUTPUT,     -28, 400, "guard_violation",        "the answer was blocked by an output check")

enum mk_error {
#define MK_ERROR_ENUM(name, value, http, type, msg) MK_E##name = (value),
    MK_ERROR_MAP(MK_ERROR_ENUM)
#undef MK_ERROR_ENUM
};

/* Each accepts any int; an unknown code maps to INTERNAL's row. Strings are static. */
const char *mk_strerror(int code);
const char *mk_error_name(int code);      /* "MK_EINVAL" */
int mk_error_http_status(int code);
const char *mk_error_openai_type(int code);

#endif
