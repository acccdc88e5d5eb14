/* mk_services: opening and closing the process-wide services (see mk_services.h). */
#include "mk_services.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "audit/mk_audit.h"
#include "core/mk_error.h"
#include "store/mk_store.h"

int mk_services_open(const struct mk_config *cfg, struct mk_services **out, mk_buf *err)
{
    *out = NULL;
    struct mk_services *s = calloc(1, sizeof *s);
    if (!s) return MK_ENOMEM;
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        mk_buf_printf(err, "cannot create data_dir %s: %s", cfg->data_dir, strerror(errno));
        free(s);
        return MK_EIO;
    }
    mk_buf url = MK_BUF_INIT;
    int rc = mk_audit_default_store_url(cfg->data_dir, &url);
    if (rc == 0) rc = mk_store_open(url.data, NULL, &s->store, err);
    mk_buf_release(&url);
    if (rc == 0) rc = mk_audit_open(s->store, cfg->data_dir, NULL, &s->audit, err);
    if (rc != 0) {
        mk_services_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void mk_services_free(struct mk_services *s)
{
    if (!s) return;
    mk_audit_free(s->audit); /* flushes and seals: before the store goes */
    mk_store_free(s->store);
    free(s);
}
