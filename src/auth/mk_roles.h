/*
 * mk_roles: the four roles and the ONE permission table.
 *
 * Permissions are data: each row of MK_PERM_MAP names a permission and the roles that
 * hold it. Code asks `mk_role_can(role, MK_PERM_KEYS_MANAGE)`; nothing branches on
 * role names. Changing who may do what is editing a row (docs/AUTH.md prints the
 * same table). The role table carries the per-role defaults the limits use and
 * whether a console login needs a second factor.
 */
#ifndef MK_ROLES_H
#define MK_ROLES_H

#include <stdbool.h>
#include <stdint.h>

/*  id          name         rpm    tpm      console TOTP   what it is for */
#define MK_ROLE_MAP(X)                                                                                  \
    X(USER,      "user",      120,   100000,  false) /* end users, widgets, bots: call models */        \
    X(DEVELOPER, "developer", 300,   300000,  false) /* integrators: also usage, knowledge base */      \
    X(OPERATOR,  "operator",  600,   600000,  true)  /* support desk staff: also the operator console */\
    X(ADMIN,     "admin",     1200,  2000000, true)  /* everything, incl. keys, audit, config */

enum mk_role {
#define MK_ROLE_ENUM(id, name, rpm, tpm, mfa) MK_ROLE_##id,
    MK_ROLE_MAP(MK_ROLE_ENUM)
#undef MK_ROLE_ENUM
    MK_ROLE_COUNT
};

#define MK_R_USER (1u << MK_ROLE_USER)
#define MK_R_DEV (1u << MK_ROLE_DEVELOPER)
#define MK_R_OP (1u << MK_ROLE_OPERATOR)
#define MK_R_ADMIN (1u << MK_ROLE_ADMIN)
#define MK_R_ALL (MK_R_USER | MK_R_DEV | MK_R_OP | MK_R_ADMIN)

/*  id              name              roles holding it                      */
#define MK_PERM_MAP(X)                                                                                  \
    X(CHAT,          "chat",           MK_R_ALL)                   /* /v1/chat/completions */           \
    X(EMBEDDINGS,    "embeddings",     MK_R_ALL)                   /* /v1/embeddings */                 \
    X(MODELS_LIST,   "models.list",    MK_R_ALL)                   /* /v1/models */                     \
    X(USAGE_READ,    "usage.read",     MK_R_ALL)                   /* own key's usage and limits */     \
    X(USAGE_TENANT,  "usage.tenant",   MK_R_DEV | MK_R_OP | MK_R_ADMIN) /* the whole tenant's usage */  \
    X(KB_READ,       "kb.read",        MK_R_ALL)                   /* search the knowledge base */      \
    X(KB_MANAGE,     "kb.manage",      MK_R_DEV | MK_R_ADMIN)      /* ingest, edit, delete articles */  \
    X(DESK_OPERATE,  "desk.operate",   MK_R_OP | MK_R_ADMIN)       /* take over conversations */        \
    X(AUDIT_READ,    "audit.read",     MK_R_ADMIN)                 /* read/export/verify the audit log */\
    X(KEYS_MANAGE,   "keys.manage",    MK_R_ADMIN)                 /* create/rotate/revoke API keys */  \
    X(ADMIN_CONFIG,  "admin.config",   MK_R_ADMIN)                 /* reload, view effective config */  \
    X(ADMIN_TENANTS, "admin.tenants",  MK_R_ADMIN)                 /* tenants, policies, limits */      \
    X(ADMIN_USERS,   "admin.users",    MK_R_ADMIN)                 /* console users, TOTP resets */

enum mk_perm {
#define MK_PERM_ENUM(id, name, roles) MK_PERM_##id,
    MK_PERM_MAP(MK_PERM_ENUM)
#undef MK_PERM_ENUM
    MK_PERM_COUNT
};

/* "user"... (static); "" for an unknown value. */
const char *mk_role_name(enum mk_role r);
/* Parses a role name (case-insensitive); MK_EINVAL when unknown, else the role (>= 0). */
int mk_role_parse(const char *s);
/* True when role r holds permission p (false for out-of-range values). */
bool mk_role_can(enum mk_role r, enum mk_perm p);
/* Checks by permission name. A name ending in ".*" ("admin.*") asks for every
 * permission under that prefix. Unknown names are false (fail closed). */
bool mk_role_can_name(enum mk_role r, const char *perm);
/* "chat"... (static); "" for an unknown value. */
const char *mk_perm_name(enum mk_perm p);
/* MK_EINVAL or the permission. */
int mk_perm_parse(const char *s);

/* Per-role defaults from the table (0 for unknown roles). */
uint32_t mk_role_default_rpm(enum mk_role r);
uint32_t mk_role_default_tpm(enum mk_role r);
/* Whether a console login with this role must pass a TOTP second factor. */
bool mk_role_console_needs_totp(enum mk_role r);

#endif
