/*
 * pii_restorer: puts the original values back into a streamed answer, chunk by
 * chunk, even when a placeholder is split across chunks ("<PER" + "SON_1>").
 *
 * Why hold back as little as possible: every byte held back is latency the caller
 * sees. Only a tail that starts with '<' and is still a proper prefix of one of
 * this vault's placeholders can change meaning with the next chunk; everything
 * before it is final and goes out at once. "<b>" in an answer, or "<PERSON_9" when
 * the vault has two persons, is not held.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "guard/pii_int.h"

struct mk_pii_restorer {
    const mk_pii_vault *v;
    mk_buf work;   /* held-back tail + the new chunk */
};

mk_pii_restorer *mk_pii_restorer_new(const mk_pii_vault *v)
{
    if (!v)
        return NULL;
    mk_pii_restorer *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->v = v;
    mk_buf_init(&r->work, 0);
    return r;
}

void mk_pii_restorer_free(mk_pii_restorer *r)
{
    if (!r)
        return;
    mk_buf_release(&r->work);
    free(r);
}

size_t mk_pii_restorer_pending(const mk_pii_restorer *r) { return r ? r->work.len : 0; }

/* Emits work[0..len) restored, except a tail that may still become a placeholder;
 * at end of stream (final) nothing is held. */
static int drain(mk_pii_restorer *r, mk_buf *out, bool final)
{
    const char *s = r->work.data ? r->work.data : "";
    size_t len = r->work.len, i = 0, flushed = 0, hold = len;
    while (i < len) {
        const char *lt = memchr(s + i, '<', len - i);
        if (!lt)
            break;
        i = (size_t)(lt - s);
        const void *ep;
        size_t used;
        int m = pii_vault_match(r->v, s + i, len - i, &ep, &used);
        if (m == 1) {
            mk_slice val = pii_vault_entry_value(ep);
            int rc = mk_buf_append(out, s + flushed, i - flushed);
            if (rc == 0)
                rc = mk_buf_append(out, val.ptr, val.len);
            if (rc < 0)
                return rc;
            i += used;
            flushed = i;
        } else if (m == 2 && !final) {
            hold = i; /* runs to the end of the data: nothing after it to scan */
            break;
        } else {
            i++;
        }
    }
    int rc = mk_buf_append(out, s + flushed, hold - flushed);
    if (rc < 0)
        return rc;
    mk_buf_consume(&r->work, hold);
    return 0;
}

int mk_pii_restorer_feed(mk_pii_restorer *r, const char *chunk, size_t len, mk_buf *out)
{
    if (!r || !out || (!chunk && len))
        return MK_EINVAL;
    if (len == 0)
        return 0;
    int rc = mk_buf_append(&r->work, chunk, len);
    if (rc < 0)
        return rc;
    return drain(r, out, false);
}

int mk_pii_restorer_flush(mk_pii_restorer *r, mk_buf *out)
{
    if (!r || !out)
        return MK_EINVAL;
    int rc = drain(r, out, true);
    mk_buf_reset(&r->work);
    return rc;
}
