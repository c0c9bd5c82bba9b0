/* Client requests to callgrind, for bench/inprocess.py --instructions: count the
 * instructions of each measured step only, and dump them under the step's name.
 * Outside valgrind each request is a handful of no-op instructions.
 * Built by bench/inprocess.py with the machine's C compiler (needs valgrind's headers). */
#include <valgrind/callgrind.h>

void cg_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void cg_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
