/*
 * fuzz_normalize: the input guard's text surface. Any bytes go through
 * mk_normalize and the injection scan (rules and the default classifier);
 * invalid UTF-8 must be rejected cleanly, and for valid input the BASE view must
 * itself be valid UTF-8, lower case ASCII, without double or edge spaces.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_utf8.h"
#include "guard/mk_injection.h"
#include "guard/mk_normalize.h"

static struct mk_injection *det;
static struct mk_norm norm;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!det) {
        if (mk_injection_new(NULL, &det) != 0) abort();
        mk_norm_init(&norm);
    }
    const char *s = (const char *)data;
    int rc = mk_normalize(&norm, s, size);
    if (rc == 0) {
        for (int v = 0; v < MK_NORM_VIEW_COUNT; v++) {
            mk_slice x = mk_norm_view_slice(&norm, (enum mk_norm_view)v);
            if (!mk_utf8_valid(x.ptr, x.len)) abort();
        }
        mk_slice b = mk_norm_view_slice(&norm, MK_NORM_BASE);
        for (size_t i = 0; i < b.len; i++) {
            if (b.ptr[i] >= 'A' && b.ptr[i] <= 'Z') abort();
            if (b.ptr[i] == ' ' && (i == 0 || i + 1 == b.len || b.ptr[i + 1] == ' ')) abort();
        }
    } else if (rc != MK_EBADUTF8 && rc != MK_ETOOBIG) {
        abort();
    }
    struct mk_injection_verdict v;
    int rc2 = mk_injection_scan(det, s, size, &v);
    if ((rc == 0) != (rc2 == 0)) abort();
    if (!(v.score >= 0.0f && v.score <= 1.0f)) abort();
    if (rc2 != 0 && v.decision != MK_GUARD_BLOCK) abort();
    return 0;
}
