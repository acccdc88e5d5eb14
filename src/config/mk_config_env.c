/*
 * mk_config_env: ${NAME} expansion for config scalars.
 *
 * Secrets (API keys, GigaChat credentials) belong in the environment, not in the
 * file, so every scalar value is expanded before it is converted to its type:
 *   ${NAME}            the variable's value; unset is an error naming NAME
 *   ${NAME:-default}   the value when NAME is set and not empty, else `default`
 *                      (taken literally up to the first `}`)
 *   $${                a literal `${` (the escape for text that must keep it)
 * A `$` anywhere else is an ordinary character. NAME is [A-Za-z_][A-Za-z0-9_]*.
 * Expanded text is not expanded again, so a value can never pull in another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/mk_config_int.h"
#include "core/mk_error.h"
#include "core/mk_limits.h"

static bool name_start(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool name_char(char ch) { return name_start(ch) || (ch >= '0' && ch <= '9'); }

static void say(cfg_env_report_fn report, void *user, const char *msg)
{
    if (report) report(user, msg);
}

int cfg_expand_env(const char *s, size_t len, mk_buf *out, cfg_env_report_fn report, void *user)
{
    bool problem = false;
    size_t i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        if (s[i] != '$' || i + 1 >= len) {
            rc = mk_buf_append_char(out, s[i++]);
            continue;
        }
        if (s[i + 1] == '$' && i + 2 < len && s[i + 2] == '{') { /* $${ -> ${ */
            rc = mk_buf_append(out, "${", 2);
            i += 3;
            continue;
        }
        if (s[i + 1] != '{') {
            rc = mk_buf_append_char(out, s[i++]);
            continue;
        }
        /* ${NAME} or ${NAME:-default} */
        size_t n0 = i + 2, j = n0;
        if (j < len && name_start(s[j])) {
            while (j < len && name_char(s[j])) j++;
        }
        size_t nlen = j - n0;
        const char *def = NULL;
        size_t deflen = 0, end = len; /* end: index of the closing '}' */
        if (nlen > 0 && j < len && s[j] == '}') {
            end = j;
        } else if (nlen > 0 && j + 1 < len && s[j] == ':' && s[j + 1] == '-') {
            const char *close = memchr(s + j + 2, '}', len - (j + 2));
            if (close) {
                def = s + j + 2;
                deflen = (size_t)(close - def);
                end = (size_t)(close - s);
            }
        }
        if (end == len || nlen > MK_MAX_NAME_BYTES) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s (write ${NAME} or ${NAME:-default}; $${ gives a literal ${)",
                     nlen > MK_MAX_NAME_BYTES ? "variable name too long" : "malformed variable reference");
            say(report, user, msg);
            problem = true;
            rc = mk_buf_append(out, "${", 2); /* keep going so later problems are seen too */
            i += 2;
            continue;
        }
        char name[MK_MAX_NAME_BYTES + 1];
        memcpy(name, s + n0, nlen);
        name[nlen] = '\0';
        const char *val = getenv(name);
        if (def && (!val || !*val)) {
            rc = mk_buf_append(out, def, deflen);
        } else if (val) {
            rc = mk_buf_append_str(out, val);
        } else {
            char msg[2 * MK_MAX_NAME_BYTES + 96];
            snprintf(msg, sizeof msg, "environment variable '%s' is not set (use ${%s:-default} for a fallback)",
                     name, name);
            say(report, user, msg);
            problem = true;
        }
        i = end + 1;
    }
    if (rc) return rc;
    /* An empty result still needs a terminated buffer for the callers' C-string use. */
    if (!out->data && (rc = mk_buf_append(out, "", 0)) != 0) return rc;
    return problem ? MK_ECONFIG : 0;
}
