/* mk_roles: lookups over the role and permission tables of mk_roles.h. */
#include <string.h>
#include <strings.h>

#include "auth/mk_roles.h"
#include "core/mk_error.h"

struct role_row {
    const char *name;
    uint32_t rpm, tpm;
    bool mfa;
};

static const struct role_row roles[MK_ROLE_COUNT] = {
#define MK_ROLE_ROW(id, n, r, t, m) {(n), (r), (t), (m)},
    MK_ROLE_MAP(MK_ROLE_ROW)
#undef MK_ROLE_ROW
};

struct perm_row {
    const char *name;
    unsigned roles;
};

static const struct perm_row perms[MK_PERM_COUNT] = {
#define MK_PERM_ROW(id, n, r) {(n), (r)},
    MK_PERM_MAP(MK_PERM_ROW)
#undef MK_PERM_ROW
};

static bool role_ok(enum mk_role r) { return (unsigned)r < MK_ROLE_COUNT; }

const char *mk_role_name(enum mk_role r) { return role_ok(r) ? roles[r].name : ""; }

int mk_role_parse(const char *s)
{
    if (!s) return MK_EINVAL;
    for (int i = 0; i < MK_ROLE_COUNT; i++)
        if (strcasecmp(s, roles[i].name) == 0) return i;
    return MK_EINVAL;
}

bool mk_role_can(enum mk_role r, enum mk_perm p)
{
    return role_ok(r) && (unsigned)p < MK_PERM_COUNT && (perms[p].roles & (1u << r)) != 0;
}

bool mk_role_can_name(enum mk_role r, const char *perm)
{
    if (!perm || !role_ok(r)) return false;
    size_t len = strlen(perm);
    if (len >= 2 && strcmp(perm + len - 2, ".*") == 0) {
        size_t plen = len - 1; /* keep the dot: "admin." */
        bool any = false;
        for (int i = 0; i < MK_PERM_COUNT; i++) {
            if (strncmp(perms[i].name, perm, plen) != 0) continue;
            any = true;
            if (!(perms[i].roles & (1u << r))) return false;
        }
        return any;
    }
    int p = mk_perm_parse(perm);
    return p >= 0 && mk_role_can(r, (enum mk_perm)p);
}

const char *mk_perm_name(enum mk_perm p) { return (unsigned)p < MK_PERM_COUNT ? perms[p].name : ""; }

int mk_perm_parse(const char *s)
{
    if (!s) return MK_EINVAL;
    for (int i = 0; i < MK_PERM_COUNT; i++)
        if (strcmp(s, perms[i].name) == 0) return i;
    return MK_EINVAL;
}

uint32_t mk_role_default_rpm(enum mk_role r) { return role_ok(r) ? roles[r].rpm : 0; }
uint32_t mk_role_default_tpm(enum mk_role r) { return role_ok(r) ? roles[r].tpm : 0; }
bool mk_role_console_needs_totp(enum mk_role r) { return role_ok(r) && roles[r].mfa; }
