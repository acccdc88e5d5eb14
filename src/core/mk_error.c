/* mk_error: lookups into the one error table (mk_error.h). */
#include "mk_error.h"

#include <stddef.h>

struct error_row {
    int code;
    int http;
    const char *name;
    const char *type;
    const char *msg;
};

static const struct error_row error_rows[] = {
#define MK_ERROR_ROW(name, value, http, type, msg) {value, http, "MK_E" #name, type, msg},
    MK_ERROR_MAP(MK_ERROR_ROW)
#undef MK_ERROR_ROW
};

static const struct error_row *find_row(int code)
{
    for (size_t i = 0; i < sizeof error_rows / sizeof error_rows[0]; i++)
        if (error_rows[i].code == code) return &error_rows[i];
    for (size_t i = 0; i < sizeof error_rows / sizeof error_rows[0]; i++)
        if (error_rows[i].code == MK_EINTERNAL) return &error_rows[i];
    return &error_rows[0];
}

const char *mk_strerror(int code) { return find_row(code)->msg; }
const char *mk_error_name(int code) { return find_row(code)->name; }
int mk_error_http_status(int code) { return find_row(code)->http; }
const char *mk_error_openai_type(int code) { return find_row(code)->type; }
