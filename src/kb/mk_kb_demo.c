/*
 * mk_kb_demo: loads the demo knowledge base compiled into the binary.
 *
 * The articles live in kb/demo/<lang>/<slug>.md and are turned into a C table by
 * scripts/embed-kb.py at build time (see CMakeLists.txt), so Mayak can answer
 * support questions with no configuration, no files on disk and no LLM.
 */
#include <string.h>

#include "core/mk_buf.h"
#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "kb/mk_kb_int.h"

/* Splits "<lang>/<slug>.md" into its parts (copied into the given buffers). */
static int parse_path(const char *path, char *lang, size_t lang_cap, char *slug, size_t slug_cap)
{
    const char *slash = strchr(path, '/');
    size_t len = strlen(path);
    if (!slash || strchr(slash + 1, '/') || len < 3 || strcmp(path + len - 3, ".md") != 0)
        return MK_ECORRUPT;
    size_t lang_len = (size_t)(slash - path);
    size_t slug_len = (size_t)(path + len - 3 - (slash + 1));
    if (lang_len == 0 || lang_len >= lang_cap || slug_len == 0 || slug_len >= slug_cap)
        return MK_ECORRUPT;
    memcpy(lang, path, lang_len);
    lang[lang_len] = '\0';
    memcpy(slug, slash + 1, slug_len);
    slug[slug_len] = '\0';
    return 0;
}

int mk_kb_load_demo(mk_kb *kb)
{
    if (!kb)
        return MK_EINVAL;
    for (size_t i = 0; i < mk_kb_demo_nfiles; i++) {
        const struct mk_kb_embedded_file *f = &mk_kb_demo_files[i];
        char lang[8], slug[MK_MAX_NAME_BYTES + 1];
        int rc = parse_path(f->path, lang, sizeof lang, slug, sizeof slug);
        if (rc)
            return rc;
        char source[sizeof lang + sizeof slug + 16];
        snprintf(source, sizeof source, "kb://demo/%s/%s", lang, slug);
        struct mk_kb_doc doc = {
            .id = slug, .lang = lang, .title = NULL, .text = f->content, .text_len = f->len, .source = source,
        };
        rc = mk_kb_add_document(kb, &doc);
        if (rc == MK_EINVAL)
            rc = MK_ECORRUPT; /* a bad name in the embedded table is a build defect */
        if (rc)
            return rc;
    }
    return 0;
}
