/* mayak: the program. All the work is in the library; this only hands over argv. */
#include "cli/mk_cli.h"

int main(int argc, char **argv) { return mk_cli_main(argc, argv); }
