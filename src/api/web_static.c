/*
 * web_static: serves the embedded web pages.
 *
 *   /           the chat page (web/index.html); also what the widget frames
 *   /widget.js  the one-script-tag widget for other sites
 *   /operator   the operator console (web/operator.html)
 *   /admin      the admin page (web/admin.html)
 *   /web/<f>    their scripts and styles (web/<f>)
 *
 * Caching: every answer has a strong ETag (a hash of the file), and If-None-Match
 * gets 304. Pages and the widget are revalidated on every use (no-cache), so a new
 * binary's pages show at once; scripts and styles may be reused for an hour (they
 * change only with the binary, and the pages that load them are revalidated).
 * Security headers: nosniff everywhere; the console and admin page refuse to be
 * framed, while the chat page may be (that is how the widget shows it).
 */
#include <string.h>

#include "api/web_static.h"
#include "core/mk_error.h"
#include "mk_api.h"

void mk_api_web(mk_ctx *ctx);

const struct mk_web_file *mk_web_find(const char *path, size_t len)
{
    size_t lo = 0, hi = mk_web_nfiles;
    while (lo < hi) { /* the table is sorted by path */
        size_t mid = lo + (hi - lo) / 2;
        const char *p = mk_web_files[mid].path;
        size_t pl = strlen(p);
        int c = memcmp(p, path, pl < len ? pl : len);
        if (c == 0) c = pl < len ? -1 : pl > len ? 1 : 0;
        if (c == 0) return &mk_web_files[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* True when an If-None-Match header lists the ETag (or is "*"). */
static bool etag_matches(mk_slice inm, const char *etag)
{
    if (!inm.ptr) return false;
    size_t el = strlen(etag);
    for (size_t i = 0; i < inm.len;) {
        while (i < inm.len && (inm.ptr[i] == ' ' || inm.ptr[i] == ',')) i++;
        size_t s = i;
        while (i < inm.len && inm.ptr[i] != ',') i++;
        size_t e = i;
        while (e > s && inm.ptr[e - 1] == ' ') e--;
        mk_slice t = {inm.ptr + s, e - s};
        if (t.len > 2 && t.ptr[0] == 'W' && t.ptr[1] == '/') t = (mk_slice){t.ptr + 2, t.len - 2};
        if ((t.len == 1 && t.ptr[0] == '*') || (t.len == el && memcmp(t.ptr, etag, el) == 0)) return true;
    }
    return false;
}

void mk_api_web(mk_ctx *ctx)
{
    mk_slice p = ctx->req->path;
    const char *name;
    size_t nlen;
    bool page = true, frameable = false;
    if (mk_slice_eq_cstr(p, "/")) {
        name = "index.html";
        frameable = true;
    } else if (mk_slice_eq_cstr(p, "/widget.js")) {
        name = "widget.js";
    } else if (mk_slice_eq_cstr(p, "/operator")) {
        name = "operator.html";
    } else if (mk_slice_eq_cstr(p, "/admin")) {
        name = "admin.html";
    } else {
        name = NULL;
        page = false;
    }
    const struct mk_web_file *f;
    if (name) {
        nlen = strlen(name);
        f = mk_web_find(name, nlen);
    } else {
        mk_slice rest = {p.ptr + 5, p.len - 5}; /* after "/web/" */
        bool ok = rest.len > 0 && !memchr(rest.ptr, '\\', rest.len);
        for (size_t i = 0; ok && i + 1 < rest.len; i++)
            if (rest.ptr[i] == '.' && rest.ptr[i + 1] == '.') ok = false; /* no way out of web/ */
        f = ok ? mk_web_find(rest.ptr, rest.len) : NULL;
        /* pages are served under their own paths only */
        if (f && strstr(f->content_type, "text/html")) f = NULL;
    }
    if (!f) {
        mk_api_fail_code(ctx, MK_ENOTFOUND, "not_found", "no such page");
        return;
    }
    mk_ctx_add_header(ctx, "ETag", f->etag);
    mk_ctx_add_header(ctx, "X-Content-Type-Options", "nosniff");
    mk_ctx_add_header(ctx, "Cache-Control", page || strcmp(f->path, "widget.js") == 0 ? "no-cache" : "public, max-age=3600");
    if (strstr(f->content_type, "text/html")) {
        mk_ctx_add_header(ctx, "Referrer-Policy", "same-origin");
        mk_ctx_add_header(ctx, "Content-Security-Policy",
                          frameable ? "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:"
                                    : "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:;"
                                      " frame-ancestors 'none'");
        if (!frameable) mk_ctx_add_header(ctx, "X-Frame-Options", "DENY");
    }
    if (etag_matches(mk_http_req_header(ctx->req, "if-none-match"), f->etag)) {
        mk_api_send(ctx, 304, f->content_type, "", 0);
        return;
    }
    mk_api_send(ctx, 200, f->content_type, f->data, f->len);
}
