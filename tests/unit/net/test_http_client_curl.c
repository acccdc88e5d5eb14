/*
 * The upstream client's tests again, with every call forced through libcurl
 * (mk_http_client_set_native(client, false)): both paths must keep the same contract.
 */
#define MK_HTTPC_FORCE_CURL 1
#include "test_http_client.c"
