/*
 * fuzz_pii: the PII detector, masking, vault and streaming restorer on arbitrary
 * bytes. Besides "no crash, no leak, no UB" it checks the invariants the gateway
 * relies on: matches are sorted, non-overlapping and inside the text; masking with
 * placeholders and restoring gives the original text back (when the text has no
 * '<' of its own that could read as a placeholder, and no value appears in two
 * spellings -- those share a placeholder and come back in the first spelling); every
 * match's placeholder leads back to its value; and the streaming restorer,
 * fed the masked text in pieces, gives the same as restoring it whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guard/mk_pii.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    mk_pii_matches m = MK_PII_MATCHES_INIT;
    int rc = mk_pii_detect(text, size, NULL, &m);
    if (rc != 0) {
        mk_pii_matches_release(&m);
        return 0;
    }
    for (size_t i = 0; i < m.n; i++) {
        if (m.v[i].start >= m.v[i].end || m.v[i].end > size || m.v[i].type <= MK_PII_NONE ||
            m.v[i].type >= MK_PII_TYPE_COUNT || (i > 0 && m.v[i].start < m.v[i - 1].end))
            abort();
    }
    mk_pii_vault *v = mk_pii_vault_new();
    mk_pii_policy p = {.mode = MK_PII_MODE_PLACEHOLDER};
    mk_buf masked = MK_BUF_INIT, back = MK_BUF_INIT, streamed = MK_BUF_INIT;
    if (v && mk_pii_apply(text, size, m.v, m.n, &p, v, &masked, NULL) == 0) {
        const char *ms = masked.data ? masked.data : "";
        int one_spelling = 1;
        for (size_t i = 0; i < m.n; i++) {
            mk_slice ph, val;
            const char *mv = text + m.v[i].start;
            size_t ml = m.v[i].end - m.v[i].start;
            if (mk_pii_vault_lookup_value(v, m.v[i].type, mv, ml, &ph) != 0 ||
                mk_pii_vault_lookup_placeholder(v, ph.ptr, ph.len, &val) != 0)
                abort();
            if (val.len != ml || memcmp(val.ptr, mv, ml) != 0)
                one_spelling = 0;
        }
        if (mk_pii_vault_restore(v, ms, masked.len, &back) == 0 && !memchr(text, '<', size) &&
            one_spelling && (back.len != size || (size && memcmp(back.data, text, size) != 0)))
            abort();
        /* Stream the masked text in pieces whose sizes come from the input. */
        mk_pii_restorer *r = mk_pii_restorer_new(v);
        if (r) {
            size_t off = 0, k = 0;
            while (off < masked.len) {
                size_t step = 1 + (size ? data[k++ % size] % 7 : 0);
                if (step > masked.len - off)
                    step = masked.len - off;
                if (mk_pii_restorer_feed(r, ms + off, step, &streamed) != 0)
                    abort();
                off += step;
            }
            mk_pii_restorer_flush(r, &streamed);
            mk_buf whole = MK_BUF_INIT;
            mk_pii_vault_restore(v, ms, masked.len, &whole);
            if (whole.len != streamed.len || (whole.len && memcmp(whole.data, streamed.data, whole.len)))
                abort();
            mk_buf_release(&whole);
            mk_pii_restorer_free(r);
        }
        (void)mk_pii_vault_leaks(v, text, size, NULL, NULL);
    }
    /* The other modes on the same matches. */
    static const unsigned char key[32] = {1, 2, 3};
    for (int mode = MK_PII_MODE_REDACT; mode <= MK_PII_MODE_HASH; mode++) {
        mk_buf o = MK_BUF_INIT;
        mk_pii_policy q = {.mode = (mk_pii_mode)mode, .hash_key = key, .hash_key_len = sizeof key};
        if (mk_pii_apply(text, size, m.v, m.n, &q, NULL, &o, NULL) != 0)
            abort();
        mk_buf_release(&o);
    }
    mk_buf_release(&masked);
    mk_buf_release(&back);
    mk_buf_release(&streamed);
    mk_pii_vault_free(v);
    mk_pii_matches_release(&m);
    return 0;
}
