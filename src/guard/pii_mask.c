/*
 * pii_mask: replaces detected spans by policy -- "[REDACTED]", a partial mask that
 * keeps what support staff need to tell values apart (last four digits, the e-mail
 * domain, initials), a keyed hash that is stable per tenant (the same card gives the
 * same token in every request, so analytics and caches still group them, yet the
 * token cannot be reversed without the tenant's key), or a reversible placeholder
 * kept in the request's vault.
 */
#include <ctype.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "core/mk_error.h"
#include "guard/pii_int.h"

static const char *const mode_names[] = {"off", "redact", "mask", "hash", "placeholder"};

int mk_pii_mode_parse(const char *s, size_t len)
{
    if (!s)
        return -1;
    for (int m = 0; m < (int)(sizeof mode_names / sizeof *mode_names); m++)
        if (strlen(mode_names[m]) == len && strncasecmp(mode_names[m], s, len) == 0)
            return m;
    return -1;
}

const char *mk_pii_mode_name(mk_pii_mode m)
{
    return (unsigned)m < sizeof mode_names / sizeof *mode_names ? mode_names[m] : "off";
}

/* Digits (or, for IBAN, alphanumerics after the country code) become '*' except
 * the last four; separators stay so the shape is still recognisable. */
static int mask_chars(mk_buf *out, const char *s, size_t n, bool alnum, size_t keep_head)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += alnum ? isalnum((unsigned char)s[i]) != 0 : (s[i] >= '0' && s[i] <= '9');
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        bool c = alnum ? isalnum((unsigned char)s[i]) != 0 : (s[i] >= '0' && s[i] <= '9');
        char ch = s[i];
        if (c) {
            seen++;
            if (seen > keep_head && seen + 4 <= total)
                ch = '*';
        }
        int rc = mk_buf_append_char(out, ch);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int mask_email(mk_buf *out, const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (!at || at == s)
        return mk_buf_append_str(out, "***");
    int rc = mk_buf_append_char(out, s[0]);
    if (rc == 0)
        rc = mk_buf_append_str(out, "***");
    if (rc == 0)
        rc = mk_buf_append(out, at, n - (size_t)(at - s));
    return rc;
}

static int mask_ip(mk_buf *out, const char *s, size_t n)
{
    /* Keep the first component (a network hint), hide the rest. */
    size_t i = 0;
    while (i < n && s[i] != '.' && s[i] != ':')
        i++;
    int rc = mk_buf_append(out, s, i);
    if (rc == 0)
        rc = mk_buf_append_str(out, i < n && s[i] == '.' ? ".*.*.*" : ":*");
    return rc;
}

/* "Иванов Пётр Сергеевич" -> "И. П. С." */
static int mask_person(mk_buf *out, const char *s, size_t n)
{
    bool word = false, first_out = true;
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = pii_utf8_decode(s + i, n - i, &l);
        if (pii_is_letter(cp)) {
            if (!word) {
                int rc = first_out ? 0 : mk_buf_append_char(out, ' ');
                if (rc == 0)
                    rc = mk_buf_append(out, s + i, l);
                if (rc == 0)
                    rc = mk_buf_append_char(out, '.');
                if (rc < 0)
                    return rc;
                first_out = false;
            }
            word = true;
        } else if (cp != '\'' && cp != '-') {
            word = false;
        }
        i += l;
    }
    return 0;
}

static int apply_one(const char *v, size_t n, const mk_pii_match *m, mk_pii_mode mode,
                     const mk_pii_policy *p, mk_pii_vault *vault, mk_buf *out)
{
    switch (mode) {
    case MK_PII_MODE_OFF:
        return mk_buf_append(out, v, n);
    case MK_PII_MODE_REDACT:
        return mk_buf_append_str(out, "[REDACTED]");
    case MK_PII_MODE_MASK:
        if (pii_type_is_numeric(m->type))
            return mask_chars(out, v, n, false, 0);
        if (m->type == MK_PII_IBAN)
            return mask_chars(out, v, n, true, 2);
        if (m->type == MK_PII_EMAIL)
            return mask_email(out, v, n);
        if (m->type == MK_PII_IP)
            return mask_ip(out, v, n);
        return mask_person(out, v, n);
    case MK_PII_MODE_HASH: {
        if (!p->hash_key || p->hash_key_len < MK_PII_HASH_KEY_MIN ||
            p->hash_key_len > MK_PII_HASH_KEY_MAX)
            return MK_EINVAL;
        char canon[MK_PII_VALUE_MAX * 2 + 1];
        size_t cl = n <= MK_PII_VALUE_MAX ? pii_canon(m->type, v, n, canon, sizeof canon) : 0;
        const char *src = cl ? canon : v;
        size_t sl = cl ? cl : n;
        /* The type is hashed too, so an INN and a phone with the same digits differ. */
        unsigned char h[16];
        crypto_generichash_state st;
        const char *tn = mk_pii_type_name(m->type);
        if (crypto_generichash_init(&st, p->hash_key, p->hash_key_len, sizeof h) != 0 ||
            crypto_generichash_update(&st, (const unsigned char *)tn, strlen(tn) + 1) != 0 ||
            crypto_generichash_update(&st, (const unsigned char *)src, sl) != 0 ||
            crypto_generichash_final(&st, h, sizeof h) != 0)
            return MK_EINTERNAL;
        sodium_memzero(canon, sizeof canon);
        char hex[2 * 6 + 1];
        sodium_bin2hex(hex, sizeof hex, h, 6);
        return mk_buf_printf(out, "<%s#%s>", tn, hex);
    }
    case MK_PII_MODE_PLACEHOLDER: {
        if (!vault)
            return MK_EINVAL;
        mk_slice ph;
        int rc = mk_pii_vault_put(vault, m->type, v, n, &ph);
        if (rc < 0)
            return rc;
        return mk_buf_append_slice(out, ph);
    }
    }
    return MK_EINVAL;
}

int mk_pii_apply(const char *text, size_t len, const mk_pii_match *m, size_t n,
                 const mk_pii_policy *policy, mk_pii_vault *vault, mk_buf *out,
                 size_t *applied)
{
    if (!out || !policy || (!text && len) || (!m && n))
        return MK_EINVAL;
    if (applied)
        *applied = 0;
    size_t pos = 0, cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i].start < pos || m[i].end <= m[i].start || m[i].end > len ||
            m[i].type <= MK_PII_NONE || m[i].type >= MK_PII_TYPE_COUNT)
            return MK_EINVAL;
        mk_pii_mode mode = policy->per_type[m[i].type] != MK_PII_MODE_OFF
                               ? policy->per_type[m[i].type] : policy->mode;
        if ((unsigned)mode > MK_PII_MODE_PLACEHOLDER)
            return MK_EINVAL;
        int rc = mk_buf_append(out, text + pos, m[i].start - pos);
        if (rc == 0)
            rc = apply_one(text + m[i].start, m[i].end - m[i].start, &m[i], mode, policy, vault, out);
        if (rc < 0)
            return rc;
        cnt += mode != MK_PII_MODE_OFF;
        pos = m[i].end;
    }
    int rc = mk_buf_append(out, text + pos, len - pos);
    if (rc == 0 && applied)
        *applied = cnt;
    return rc;
}

int mk_pii_redact(const char *text, size_t len, const mk_pii_options *opts,
                  const mk_pii_policy *policy, mk_pii_vault *vault, mk_buf *out,
                  size_t *applied)
{
    mk_pii_matches ms = MK_PII_MATCHES_INIT;
    int rc = mk_pii_detect(text, len, opts, &ms);
    /* Too many matches: fail rather than forward a text only partly masked. */
    if (rc == 0)
        rc = mk_pii_apply(text, len, ms.v, ms.n, policy, vault, out, applied);
    mk_pii_matches_release(&ms);
    return rc;
}
