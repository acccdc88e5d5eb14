/*
 * kb_api: the knowledge-base admin API (/api/v1/kb/...) and the process's shared
 * knowledge-base library (src/kb/mk_kb_store.h), loaded from the store.
 */
#ifndef MK_KB_API_H
#define MK_KB_API_H

#include "api/mk_api.h"

struct mk_kb_lib;

/* Handles every method under /api/v1/kb/ (routes.c). */
void mk_api_kb(mk_ctx *ctx);

/* Starts loading the knowledge base from the store on a worker thread and installs
 * the SIGHUP reload, so the first question does not wait for the load. Optional:
 * without it the first /api/v1/kb request starts the same. Call on the app's loop
 * after its services are open. 0 or an error (logged; requests then answer 503). */
int mk_kb_api_start(mk_app *app);

/* The loaded library, or NULL while loading / when unavailable. For other parts of the
 * server (the desk) that search the same knowledge base: mk_kb_lib_kb() of it is
 * thread-safe to search; call on the loop thread, use the kb from any thread while the
 * app runs. */
struct mk_kb_lib *mk_kb_api_lib(void);

/* mk_kb_api_lib(), plus a hold: the library is not freed at shutdown until every hold
 * is released with mk_kb_api_unhold(), so a worker may still be searching it (or a
 * reply may still point at its strings) while the server stops. NULL (and no hold)
 * while loading, after a failed load or once closing. Loop thread only, both calls. */
struct mk_kb_lib *mk_kb_api_hold(void);
void mk_kb_api_unhold(void);

#endif
