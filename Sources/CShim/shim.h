#include <sys/inotify.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdint.h>
// Non-variadic wrappers: Swift cannot call C variadic functions.
static inline int g_prctl_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
