/*
 * pii_vault: the per-request map between personal values and the placeholders sent
 * to a provider in their stead ("<PERSON_1>", "<INN_2>"), the restore of a whole
 * answer, and the leak check output guards run.
 *
 * Placeholders are numbered per type in order of first appearance, so an answer
 * reads naturally ("<PERSON_1> asked about <PERSON_2>") and the same value always
 * maps to the same placeholder -- compared in a canonical form, so "+7 912 ..." and
 * "8 (912) ..." are one phone. Placeholder -> value needs no hash: the type tag and
 * number index a per-type array. Value -> placeholder uses a small open-addressing
 * table. Values are wiped before they are freed: the vault is the one place in the
 * gateway that holds the raw personal data of a masked request.
 */
#include <ctype.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "guard/pii_int.h"

typedef struct entry {
    mk_pii_type type;
    char *value;   /* original, as first seen */
    size_t vlen;
    char *canon;   /* canonical form (see pii_canon) */
    size_t clen;
    char ph[MK_PII_PLACEHOLDER_MAX];
    size_t phlen;
} entry;

struct mk_pii_vault {
    entry *e;
    size_t n, cap;
    /* per type: indexes into e of numbers 1..count */
    size_t *by_type[MK_PII_TYPE_COUNT];
    size_t count[MK_PII_TYPE_COUNT], tcap[MK_PII_TYPE_COUNT];
    uint32_t *table;  /* value hash table: index + 1, 0 = empty */
    size_t tslots;
};

bool pii_type_is_numeric(mk_pii_type t)
{
    switch (t) {
    case MK_PII_INN: case MK_PII_SNILS: case MK_PII_PASSPORT: case MK_PII_OGRN:
    case MK_PII_OGRNIP: case MK_PII_CARD: case MK_PII_ACCOUNT: case MK_PII_PHONE:
        return true;
    default:
        return false;
    }
}

size_t pii_canon(mk_pii_type t, const char *v, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return 0;
    if (pii_type_is_numeric(t)) {
        for (size_t i = 0; i < len; i++)
            if (v[i] >= '0' && v[i] <= '9') {
                if (o + 1 >= cap)
                    return 0;
                out[o++] = v[i];
            }
        if (t == MK_PII_PHONE && o == 11 && out[0] == '8')
            out[0] = '7';
    } else if (t == MK_PII_IBAN) {
        for (size_t i = 0; i < len; i++)
            if (isalnum((unsigned char)v[i])) {
                if (o + 1 >= cap)
                    return 0;
                out[o++] = (char)toupper((unsigned char)v[i]);
            }
    } else {
        /* Fold case, collapse runs of white space to one space. */
        size_t fl = pii_fold(v, len, out, cap);
        if (fl == 0)
            return 0;
        bool sp = true;
        for (size_t i = 0; i < fl; i++) {
            char c = out[i];
            bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r';
            if (ws) {
                if (!sp)
                    out[o++] = ' ';
                sp = true;
            } else {
                out[o++] = c;
                sp = false;
            }
        }
        if (o > 0 && out[o - 1] == ' ')
            o--;
    }
    if (o < cap)
        out[o] = '\0';
    return o;
}

mk_pii_vault *mk_pii_vault_new(void)
{
    return calloc(1, sizeof(mk_pii_vault));
}

void mk_pii_vault_free(mk_pii_vault *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        sodium_memzero(v->e[i].value, v->e[i].vlen);
        sodium_memzero(v->e[i].canon, v->e[i].clen);
        free(v->e[i].value);
        free(v->e[i].canon);
    }
    free(v->e);
    for (int t = 0; t < MK_PII_TYPE_COUNT; t++)
        free(v->by_type[t]);
    free(v->table);
    free(v);
}

size_t mk_pii_vault_count(const mk_pii_vault *v) { return v ? v->n : 0; }

static uint32_t vhash(mk_pii_type t, const char *c, size_t n)
{
    uint32_t h = 2166136261u ^ (uint32_t)t;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)c[i]) * 16777619u;
    return h;
}

static const entry *find_value(const mk_pii_vault *v, mk_pii_type t, const char *c, size_t n)
{
    if (!v->tslots)
        return NULL;
    size_t h = vhash(t, c, n) & (v->tslots - 1);
    for (;;) {
        uint32_t ix = v->table[h];
        if (!ix)
            return NULL;
        const entry *e = &v->e[ix - 1];
        if (e->type == t && e->clen == n && memcmp(e->canon, c, n) == 0)
            return e;
        h = (h + 1) & (v->tslots - 1);
    }
}

static int table_grow(mk_pii_vault *v)
{
    size_t ns = v->tslots ? v->tslots * 2 : 64;
    uint32_t *nt = calloc(ns, sizeof *nt);
    if (!nt)
        return MK_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        size_t h = vhash(v->e[i].type, v->e[i].canon, v->e[i].clen) & (ns - 1);
        while (nt[h])
            h = (h + 1) & (ns - 1);
        nt[h] = (uint32_t)(i + 1);
    }
    free(v->table);
    v->table = nt;
    v->tslots = ns;
    return 0;
}

int mk_pii_vault_put(mk_pii_vault *v, mk_pii_type t, const char *value, size_t len,
                     mk_slice *placeholder)
{
    if (!v || !placeholder || !value || len == 0 || t <= MK_PII_NONE || t >= MK_PII_TYPE_COUNT)
        return MK_EINVAL;
    if (len > MK_PII_VALUE_MAX)
        return MK_ETOOBIG;
    char canon[MK_PII_VALUE_MAX * 2 + 1];
    size_t cl = pii_canon(t, value, len, canon, sizeof canon);
    if (cl == 0) {
        /* Nothing canonical (a "phone" without digits): compare the bytes as they are. */
        memcpy(canon, value, len);
        cl = len;
    }
    const entry *old = find_value(v, t, canon, cl);
    if (old) {
        *placeholder = (mk_slice){old->ph, old->phlen};
        return 0;
    }
    if (v->n >= MK_PII_VAULT_MAX)
        return MK_ETOOBIG;
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 8;
        entry *ne = realloc(v->e, nc * sizeof *ne);
        if (!ne)
            return MK_ENOMEM;
        v->e = ne;
        v->cap = nc;
    }
    if (v->count[t] == v->tcap[t]) {
        size_t nc = v->tcap[t] ? v->tcap[t] * 2 : 4;
        size_t *nb = realloc(v->by_type[t], nc * sizeof *nb);
        if (!nb)
            return MK_ENOMEM;
        v->by_type[t] = nb;
        v->tcap[t] = nc;
    }
    if ((v->n + 1) * 2 > v->tslots && table_grow(v) < 0)
        return MK_ENOMEM;
    entry *e = &v->e[v->n];
    e->value = malloc(len + 1);
    e->canon = malloc(cl + 1);
    if (!e->value || !e->canon) {
        free(e->value);
        free(e->canon);
        return MK_ENOMEM;
    }
    memcpy(e->value, value, len);
    e->value[len] = '\0';
    e->vlen = len;
    memcpy(e->canon, canon, cl);
    e->canon[cl] = '\0';
    e->clen = cl;
    sodium_memzero(canon, cl);
    e->type = t;
    int pl = snprintf(e->ph, sizeof e->ph, "<%s_%zu>", mk_pii_type_name(t), v->count[t] + 1);
    e->phlen = (size_t)pl;
    v->by_type[t][v->count[t]++] = v->n;
    size_t h = vhash(t, e->canon, cl) & (v->tslots - 1);
    while (v->table[h])
        h = (h + 1) & (v->tslots - 1);
    v->table[h] = (uint32_t)(v->n + 1);
    v->n++;
    *placeholder = (mk_slice){e->ph, e->phlen};
    return 0;
}

int mk_pii_vault_lookup_value(const mk_pii_vault *v, mk_pii_type t, const char *value,
                              size_t len, mk_slice *placeholder)
{
    if (!v || !value || !placeholder || len == 0 || len > MK_PII_VALUE_MAX)
        return MK_ENOTFOUND;
    char canon[MK_PII_VALUE_MAX * 2 + 1];
    size_t cl = pii_canon(t, value, len, canon, sizeof canon);
    if (cl == 0) {
        memcpy(canon, value, len);
        cl = len;
    }
    const entry *e = find_value(v, t, canon, cl);
    sodium_memzero(canon, cl);
    if (!e)
        return MK_ENOTFOUND;
    *placeholder = (mk_slice){e->ph, e->phlen};
    return 0;
}

int pii_vault_match(const mk_pii_vault *v, const char *s, size_t n, const void **ent, size_t *used)
{
    if (n == 0 || s[0] != '<' || !v || v->n == 0)
        return 0;
    size_t i = 1;
    while (i < n && s[i] >= 'A' && s[i] <= 'Z' && i < 12)
        i++;
    size_t tl = i - 1;
    /* Which types with entries is the tag (or its beginning) consistent with? */
    bool any_prefix = false;
    mk_pii_type exact = MK_PII_NONE;
    for (int t = 1; t < MK_PII_TYPE_COUNT; t++) {
        if (!v->count[t])
            continue;
        const char *name = mk_pii_type_name((mk_pii_type)t);
        size_t nl = strlen(name);
        if (tl <= nl && memcmp(name, s + 1, tl) == 0) {
            if (tl == nl)
                exact = (mk_pii_type)t;
            else
                any_prefix = true;
        }
    }
    if (i == n)
        return (exact || any_prefix) ? 2 : 0;
    if (!exact || s[i] != '_')
        return 0;
    i++;
    size_t ns = i;
    size_t num = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i - ns < 6) {
        num = num * 10 + (size_t)(s[i] - '0');
        i++;
    }
    size_t cnt = v->count[exact];
    if (i == n) {
        /* Could more digits (or the '>') still name an existing number? */
        if (i == ns)
            return 2;
        /* A prefix p of the number extends to an existing one iff p itself is one:
         * numbers run 1..cnt without gaps. */
        return s[ns] != '0' && num <= cnt ? 2 : 0;
    }
    if (i == ns || s[ns] == '0' || s[i] != '>' || num < 1 || num > cnt)
        return 0;
    *ent = &v->e[v->by_type[exact][num - 1]];
    *used = i + 1;
    return 1;
}

int mk_pii_vault_lookup_placeholder(const mk_pii_vault *v, const char *ph, size_t len,
                                    mk_slice *value)
{
    const void *ep;
    size_t used;
    if (!v || !ph || !value || pii_vault_match(v, ph, len, &ep, &used) != 1 || used != len)
        return MK_ENOTFOUND;
    const entry *e = ep;
    *value = (mk_slice){e->value, e->vlen};
    return 0;
}

mk_slice pii_vault_entry_value(const void *ent)
{
    const entry *e = ent;
    return (mk_slice){e->value, e->vlen};
}

int mk_pii_vault_restore(const mk_pii_vault *v, const char *text, size_t len, mk_buf *out)
{
    if (!v || !out || (!text && len))
        return MK_EINVAL;
    size_t i = 0, flushed = 0;
    while (i < len) {
        const char *lt = memchr(text + i, '<', len - i);
        if (!lt)
            break;
        i = (size_t)(lt - text);
        const void *ep;
        size_t used;
        if (pii_vault_match(v, text + i, len - i, &ep, &used) == 1) {
            int rc = mk_buf_append(out, text + flushed, i - flushed);
            mk_slice val = pii_vault_entry_value(ep);
            if (rc == 0)
                rc = mk_buf_append(out, val.ptr, val.len);
            if (rc < 0)
                return rc;
            i += used;
            flushed = i;
        } else {
            i++;
        }
    }
    return mk_buf_append(out, text + flushed, len - flushed);
}

/* ---- leak check ---- */

static bool word_start(const char *s, size_t at)
{
    if (at == 0)
        return true;
    /* Walk back over a UTF-8 continuation to the previous code point's start. */
    size_t p = at - 1;
    while (p > 0 && ((unsigned char)s[p] & 0xC0) == 0x80)
        p--;
    size_t n;
    uint32_t cp = pii_utf8_decode(s + p, at - p, &n);
    return !pii_is_letter(cp) && !(cp >= '0' && cp <= '9');
}

static bool find_word(const char *hay, size_t hl, const char *needle, size_t nl, size_t *at)
{
    const char *p = hay;
    while (nl && hl >= nl && (p = memmem(p, hl - (size_t)(p - hay), needle, nl)) != NULL) {
        size_t off = (size_t)(p - hay);
        if (word_start(hay, off)) {
            *at = off;
            return true;
        }
        p++;
        if ((size_t)(p - hay) + nl > hl)
            break;
    }
    return false;
}

bool mk_pii_vault_leaks(const mk_pii_vault *v, const char *text, size_t len, size_t *at,
                        mk_pii_type *type)
{
    if (!v || v->n == 0 || !text || len == 0)
        return false;
    size_t best = (size_t)-1;
    mk_pii_type bt = MK_PII_NONE;

    /* Numbers: the digits of each digit group (separators dropped) against the
     * canonical digits. A phone is also looked for without its country code. */
    bool any_num = false;
    for (size_t k = 0; k < v->n; k++)
        any_num |= pii_type_is_numeric(v->e[k].type);
    if (any_num) {
        char dg[256];
        size_t pos[256];
        size_t i = 0;
        while (i < len) {
            if (!(text[i] >= '0' && text[i] <= '9')) {
                i++;
                continue;
            }
            size_t nd = 0, j = i;
            while (j < len && nd < sizeof dg - 1) {
                char ch = text[j];
                if (ch >= '0' && ch <= '9') {
                    pos[nd] = j;
                    dg[nd++] = ch;
                    j++;
                } else if ((ch == ' ' || ch == '-' || ch == '(' || ch == ')' || ch == '.' ||
                            ch == '+') && j + 1 < len) {
                    j++;
                } else {
                    break;
                }
            }
            dg[nd] = '\0';
            for (size_t k = 0; k < v->n; k++) {
                const entry *e = &v->e[k];
                if (!pii_type_is_numeric(e->type))
                    continue;
                const char *c = e->canon;
                size_t cl = e->clen;
                if (e->type == MK_PII_PHONE && cl == 11) {
                    c++;
                    cl--;
                }
                const char *hit = cl >= 4 ? memmem(dg, nd, c, cl) : NULL;
                if (hit && pos[hit - dg] < best) {
                    best = pos[hit - dg];
                    bt = e->type;
                }
            }
            i = j > i ? j : i + 1;
        }
    }

    /* Text values: fold the answer once (folding keeps byte offsets) and search. */
    bool any_text = false;
    for (size_t k = 0; k < v->n; k++)
        any_text |= !pii_type_is_numeric(v->e[k].type);
    if (any_text) {
        char *f = malloc(len + 1);
        if (!f) {
            /* Cannot check: report a leak so the output guard fails closed. */
            if (at)
                *at = 0;
            if (type)
                *type = MK_PII_NONE;
            return true;
        }
        size_t fl = pii_fold(text, len, f, len + 1);
        if (fl != len)
            fl = 0; /* unreachable: folding keeps lengths; be safe */
        for (size_t k = 0; k < v->n && fl; k++) {
            const entry *e = &v->e[k];
            if (pii_type_is_numeric(e->type))
                continue;
            size_t off;
            if (e->type == MK_PII_IBAN) {
                /* canonical IBAN is upper case; compare folded */
                char low[80];
                size_t ll = pii_fold(e->canon, e->clen, low, sizeof low);
                if (ll && find_word(f, fl, low, ll, &off) && off < best) {
                    best = off;
                    bt = e->type;
                }
                continue;
            }
            if (find_word(f, fl, e->canon, e->clen, &off) && off < best) {
                best = off;
                bt = e->type;
            }
            if (e->type != MK_PII_PERSON)
                continue;
            /* Names: each surname-like word by its stem ("иванову" -> "иванов"
             * also finds "Иванова"); first names alone are too common to count. */
            const char *w = e->canon, *end = e->canon + e->clen;
            size_t nwords = 1;
            for (const char *q = w; q < end; q++)
                nwords += *q == ' ';
            while (w < end) {
                const char *sp = memchr(w, ' ', (size_t)(end - w));
                size_t wl = sp ? (size_t)(sp - w) : (size_t)(end - w);
                size_t letters = 0;
                for (size_t q = 0; q < wl; q++)
                    letters += ((unsigned char)w[q] & 0xC0) != 0x80;
                bool first = pii_names_is_first(w, wl);
                if (letters >= 4 && (!first || nwords == 1)) {
                    size_t sl = wl;
                    if (letters >= 5) { /* drop the last letter: the case ending */
                        sl--;
                        while (sl > 0 && ((unsigned char)w[sl] & 0xC0) == 0x80)
                            sl--;
                    }
                    if (find_word(f, fl, w, sl, &off) && off < best) {
                        best = off;
                        bt = e->type;
                    }
                }
                w += wl + 1;
            }
        }
        sodium_memzero(f, len);
        free(f);
    }
    if (best == (size_t)-1)
        return false;
    if (at)
        *at = best;
    if (type)
        *type = bt;
    return true;
}
