/* The role and permission tables, and the default credentials policy. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "auth/mk_auth.h"
#include "auth/mk_roles.h"
#include "core/mk_error.h"

Test(roles, names_round_trip)
{
    for (int r = 0; r < MK_ROLE_COUNT; r++) cr_assert_eq(mk_role_parse(mk_role_name((enum mk_role)r)), r);
    cr_assert_eq(mk_role_parse("ADMIN"), MK_ROLE_ADMIN);
    cr_assert_eq(mk_role_parse("root"), MK_EINVAL);
    cr_assert_eq(mk_role_parse(NULL), MK_EINVAL);
    for (int p = 0; p < MK_PERM_COUNT; p++) cr_assert_eq(mk_perm_parse(mk_perm_name((enum mk_perm)p)), p);
    cr_assert_str_eq(mk_role_name((enum mk_role)99), "");
}

Test(roles, permission_table)
{
    cr_assert(mk_role_can(MK_ROLE_USER, MK_PERM_CHAT));
    cr_assert_not(mk_role_can(MK_ROLE_USER, MK_PERM_KB_MANAGE));
    cr_assert(mk_role_can(MK_ROLE_DEVELOPER, MK_PERM_KB_MANAGE));
    cr_assert_not(mk_role_can(MK_ROLE_DEVELOPER, MK_PERM_DESK_OPERATE));
    cr_assert(mk_role_can(MK_ROLE_OPERATOR, MK_PERM_DESK_OPERATE));
    cr_assert_not(mk_role_can(MK_ROLE_OPERATOR, MK_PERM_KEYS_MANAGE));
    cr_assert_not(mk_role_can(MK_ROLE_OPERATOR, MK_PERM_AUDIT_READ));
    /* admin holds everything */
    for (int p = 0; p < MK_PERM_COUNT; p++) cr_assert(mk_role_can(MK_ROLE_ADMIN, (enum mk_perm)p), "%d", p);
    /* roles are ordered: what a lower role may, a higher one may too */
    for (int p = 0; p < MK_PERM_COUNT; p++)
        for (int r = 1; r < MK_ROLE_COUNT; r++)
            if (mk_role_can((enum mk_role)(r - 1), (enum mk_perm)p) && r - 1 != MK_ROLE_DEVELOPER)
                cr_assert(mk_role_can((enum mk_role)r, (enum mk_perm)p), "perm %s role %d", mk_perm_name(p), r);
    cr_assert_not(mk_role_can((enum mk_role)-1, MK_PERM_CHAT));
    cr_assert_not(mk_role_can(MK_ROLE_ADMIN, (enum mk_perm)MK_PERM_COUNT));
}

Test(roles, by_name_and_wildcards)
{
    cr_assert(mk_role_can_name(MK_ROLE_ADMIN, "admin.*"));
    cr_assert_not(mk_role_can_name(MK_ROLE_OPERATOR, "admin.*"));
    cr_assert(mk_role_can_name(MK_ROLE_USER, "chat"));
    cr_assert_not(mk_role_can_name(MK_ROLE_ADMIN, "nonexistent"), "unknown permissions fail closed");
    cr_assert_not(mk_role_can_name(MK_ROLE_ADMIN, "nothing.*"));
    cr_assert_not(mk_role_can_name(MK_ROLE_ADMIN, NULL));
}

Test(roles, defaults_and_mfa)
{
    cr_assert_geq(mk_role_default_rpm(MK_ROLE_USER), 60);
    cr_assert_leq(mk_role_default_rpm(MK_ROLE_USER), 300);
    cr_assert_geq(mk_role_default_rpm(MK_ROLE_ADMIN), 1000);
    cr_assert(mk_role_console_needs_totp(MK_ROLE_ADMIN));
    cr_assert(mk_role_console_needs_totp(MK_ROLE_OPERATOR));
    cr_assert_not(mk_role_console_needs_totp(MK_ROLE_USER));
}

Test(auth_policy, loopback_default)
{
    struct mk_auth_policy unset = {.required = -1};
    cr_assert_not(mk_auth_credentials_required(&unset, "127.0.0.1"));
    cr_assert_not(mk_auth_credentials_required(&unset, "::1"));
    cr_assert_not(mk_auth_credentials_required(&unset, "localhost"));
    cr_assert(mk_auth_credentials_required(&unset, "0.0.0.0"));
    cr_assert(mk_auth_credentials_required(&unset, "::"));
    cr_assert(mk_auth_credentials_required(&unset, "192.168.1.5"));
    cr_assert(mk_auth_credentials_required(&unset, "example.com"));
    struct mk_auth_policy req = {.required = 1};
    cr_assert(mk_auth_credentials_required(&req, "127.0.0.1"));
    struct mk_auth_policy off = {.required = 0};
    cr_assert_not(mk_auth_credentials_required(&off, "0.0.0.0"), "explicitly off is honoured");

    struct mk_principal p;
    cr_assert_eq(mk_auth_anonymous(&unset, "127.0.0.1", "127.0.0.1", &p), 0);
    cr_assert_eq(p.kind, MK_PRINCIPAL_ANONYMOUS);
    cr_assert_eq(p.role, MK_ROLE_DEVELOPER);
    cr_assert_str_eq(p.tenant, "local");
    cr_assert_not(mk_principal_can(&p, MK_PERM_KEYS_MANAGE), "admin APIs still need a key");
    cr_assert_eq(mk_auth_anonymous(&unset, "127.0.0.1", "::ffff:127.0.0.1", &p), 0);
    cr_assert_eq(mk_auth_anonymous(&off, "0.0.0.0", "10.0.0.7", &p), MK_EUNAUTHORIZED, "remote peers never");
    cr_assert_eq(mk_auth_anonymous(&req, "127.0.0.1", "127.0.0.1", &p), MK_EUNAUTHORIZED);
    struct mk_auth_policy la = {.required = -1, .local_admin = true};
    cr_assert_eq(mk_auth_anonymous(&la, "127.0.0.1", "127.0.0.1", &p), 0);
    cr_assert_eq(p.role, MK_ROLE_ADMIN, "explicit opt-in");
}

Test(auth_policy, bearer_and_models)
{
    mk_slice c;
    cr_assert_eq(mk_auth_bearer(MK_SLICE_LIT("Bearer mk-abc"), &c), 0);
    cr_assert(mk_slice_eq_cstr(c, "mk-abc"));
    cr_assert(mk_auth_is_api_key(c));
    cr_assert_eq(mk_auth_bearer(MK_SLICE_LIT("  bearer   eyJ.x.y  "), &c), 0);
    cr_assert(mk_slice_eq_cstr(c, "eyJ.x.y"));
    cr_assert_not(mk_auth_is_api_key(c));
    cr_assert_eq(mk_auth_bearer(MK_SLICE_LIT(""), &c), MK_ENOTFOUND);
    cr_assert_eq(mk_auth_bearer(MK_SLICE_LIT("Basic abc"), &c), MK_EUNAUTHORIZED);
    cr_assert_eq(mk_auth_bearer(MK_SLICE_LIT("Bearer "), &c), MK_EUNAUTHORIZED);
    cr_assert_eq(mk_auth_bearer(MK_SLICE_LIT("Bearer a b"), &c), MK_EUNAUTHORIZED);
    cr_assert_eq(mk_auth_bearer(MK_SLICE_LIT("Bearerx"), &c), MK_EUNAUTHORIZED);

    struct mk_principal p = {0};
    cr_assert(mk_principal_allows_model(&p, "anything"), "empty list = all");
    snprintf(p.models, sizeof p.models, "gpt,local");
    cr_assert(mk_principal_allows_model(&p, "gpt"));
    cr_assert(mk_principal_allows_model(&p, "local"));
    cr_assert_not(mk_principal_allows_model(&p, "gp"));
    cr_assert_not(mk_principal_allows_model(&p, "gpt,local"));
}
