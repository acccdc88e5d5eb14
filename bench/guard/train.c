/* bench/guard/train: runs the trainer as `mayak guard train` will (same entry). */
#include "guard/mk_injection.h"

int main(int argc, char **argv) { return mk_guard_train_main(argc, argv); }
