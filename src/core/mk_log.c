/* mk_log: JSON-lines logging (see mk_log.h). One fwrite per line so lines from
 * several threads never interleave inside a line. */
#include "mk_log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "mk_buf.h"

enum mk_log_level mk_log_min_level = MK_LOG_INFO;
static FILE *log_stream;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int mk_log_level_parse(const char *s)
{
    for (int i = 0; i <= MK_LOG_OFF; i++)
        if (s && strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

void mk_log_set_level(enum mk_log_level level) { mk_log_min_level = level; }
void mk_log_set_stream(FILE *f) { log_stream = f; }

static void start_line(mk_buf *b, enum mk_log_level level, const char *event)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    mk_buf_printf(b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"event\":", when, ts.tv_nsec / 1000000,
                  level_names[level]);
    mk_buf_append_json_string(b, event, strlen(event));
}

static void emit(mk_buf *b)
{
    mk_buf_append(b, "}\n", 2);
    FILE *f = log_stream ? log_stream : stderr;
    if (b->data) {
        fwrite(b->data, 1, b->len, f);
        fflush(f);
    }
    mk_buf_release(b);
}

void mk_log_fields(enum mk_log_level level, const char *event, ...)
{
    if (level < mk_log_min_level) return;
    mk_buf b = MK_BUF_INIT;
    start_line(&b, level, event);
    va_list ap;
    va_start(ap, event);
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *val = va_arg(ap, const char *);
        mk_buf_append_char(&b, ',');
        mk_buf_append_json_string(&b, key, strlen(key));
        mk_buf_append_char(&b, ':');
        if (val) mk_buf_append_json_string(&b, val, strlen(val));
        else mk_buf_append(&b, "null", 4);
    }
    va_end(ap);
    emit(&b);
}

void mk_logf(enum mk_log_level level, const char *event, const char *fmt, ...)
{
    if (level < mk_log_min_level) return;
    mk_buf msg = MK_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    mk_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    mk_buf b = MK_BUF_INIT;
    start_line(&b, level, event);
    mk_buf_append(&b, ",\"msg\":", 7);
    mk_buf_append_json_string(&b, msg.data ? msg.data : "", msg.len);
    mk_buf_release(&msg);
    emit(&b);
}

void mk_log_raw_json(const char *json, size_t len)
{
    FILE *f = log_stream ? log_stream : stderr;
    mk_buf b = MK_BUF_INIT;
    mk_buf_append(&b, json, len);
    mk_buf_append_char(&b, '\n');
    fwrite(b.data, 1, b.len, f);
    fflush(f);
    mk_buf_release(&b);
}
