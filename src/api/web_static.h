/*
 * web_static: the web pages (web/) embedded in the binary by scripts/embed-web.py at
 * build time, and the route that serves them (web_static.c).
 */
#ifndef MK_WEB_STATIC_H
#define MK_WEB_STATIC_H

#include <stddef.h>

struct mk_web_file {
    const char *path;          /* relative to web/, '/' separators: "index.html", "assets/chat.js" */
    const char *content_type;
    const char *data;
    size_t len;
    const char *etag;          /* quoted strong validator: "\"0123456789abcdef\"" */
};

/* Sorted by path (generated). */
extern const struct mk_web_file mk_web_files[];
extern const size_t mk_web_nfiles;

/* The embedded file at `path` (no leading '/'), or NULL. */
const struct mk_web_file *mk_web_find(const char *path, size_t len);

#endif
