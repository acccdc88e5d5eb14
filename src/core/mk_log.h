/*
 * mk_log: structured logs, one JSON object per line on stderr (or a file).
 *
 *   mk_log(MK_LOG_INFO, "listening", "addr", "127.0.0.1:8080", "port", "8080", NULL);
 *
 * Fields are key/value C-string pairs ending with NULL; values are JSON-escaped.
 * mk_logf adds a formatted "msg". Lines below the configured level cost one compare.
 */
#ifndef MK_LOG_H
#define MK_LOG_H

#include <stdio.h>

enum mk_log_level { MK_LOG_DEBUG = 0, MK_LOG_INFO, MK_LOG_WARN, MK_LOG_ERROR, MK_LOG_OFF };

extern enum mk_log_level mk_log_min_level;

/* Parses "debug|info|warn|error|off"; -1 when unknown. */
int mk_log_level_parse(const char *s);
void mk_log_set_level(enum mk_log_level level);
/* Stream to write to; NULL restores stderr. Not owned. */
void mk_log_set_stream(FILE *f);

void mk_log_fields(enum mk_log_level level, const char *event, ...) __attribute__((sentinel));
#define mk_log(level, ...) \
    do { if ((level) >= mk_log_min_level) mk_log_fields((level), __VA_ARGS__); } while (0)
void mk_logf(enum mk_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write one preformatted JSON object (without newline) as a log line. */
void mk_log_raw_json(const char *json, size_t len);

#endif
