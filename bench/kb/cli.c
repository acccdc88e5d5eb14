/* kb_cli (bench/kb/cli.c): `mayak kb ...` without the rest of Mayak — the same entry point
 * (mk_kb_cli_main) linked against the kb part only, so the retrieval benchmark
 * (bench/kb/eval_kb.py) and quick experiments run while other parts are rebuilt.
 * Usage: kb_cli DATA_DIR <kb command and options...> */
#include <stdio.h>

#include "kb/mk_kb_store.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: kb_cli DATA_DIR add|list|rm|reindex|search ...\n");
        return 2;
    }
    return mk_kb_cli_main(argc - 2, argv + 2, argv[1]);
}
