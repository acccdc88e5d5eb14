/*
 * fuzz_config: mk_config_load_string on arbitrary bytes.
 *
 * The config loader reads files an operator wrote, but `mayak config check` and
 * SIGHUP reloads run it on whatever is on disk, so it must never crash, leak or hang:
 * every input ends in a config or a list of diagnostics. A few environment variables
 * are set so that ${NAME} expansion takes both its set and unset paths.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config/mk_config.h"
#include "core/mk_error.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    setenv("FUZZ_KEY", "sk-fuzz", 1);
    setenv("FUZZ_NUM", "42", 1);
    setenv("FUZZ_EMPTY", "", 1);
    setenv("FUZZ_URL", "http://127.0.0.1:8000/v1", 1);
    setenv("FUZZ_BRACES", "}${FUZZ_KEY}{", 1);
    unsetenv("FUZZ_UNSET");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mk_config *cfg = NULL;
    struct mk_config_diags diags = {0};
    int rc = mk_config_load_string("fuzz.yaml", (const char *)data, size, &cfg, &diags);
    if (rc == 0 && !cfg) abort();           /* success always yields a config */
    if (rc != 0 && cfg) abort();            /* failure never does */
    if (rc == MK_ECONFIG && !mk_config_diags_has_errors(&diags)) abort(); /* and says why */
    if (cfg) {
        /* Walk what the rest of Mayak will rely on. */
        if (!cfg->listen_host || !cfg->data_dir || !cfg->log_level || cfg->nmodel_groups == 0) abort();
        for (size_t i = 0; i < cfg->nmodel_groups; i++) {
            const struct mk_model_group_config *g = &cfg->model_groups[i];
            if (!g->name || g->ndeployments == 0) abort();
            for (size_t j = 0; j < g->ndeployments; j++)
                if (!mk_config_find_provider(cfg, g->deployments[j].provider)) abort();
        }
        struct mk_config *def = mk_config_default();
        mk_config_reload_check(def, cfg, &diags);
        mk_config_free(def);
    }
    mk_buf out = MK_BUF_INIT;
    mk_config_diags_format(&diags, &out);
    mk_buf_release(&out);
    mk_config_diags_release(&diags);
    mk_config_free(cfg);
    return 0;
}
