#include <sys/inotify.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <spawn.h>
#include <signal.h>
#include <poll.h>
#include <unistd.h>
#include <stdint.h>
// Non-variadic wrappers: Swift cannot call C variadic functions.
static inline int g_prctl_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
static inline int g_pidfd_open(int pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    return (int)syscall(434, pid, 0);
#endif
}
// GNU extensions of posix_spawn (glibc >= 2.34), declared by hand: no _GNU_SOURCE here.
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
#define G_POSIX_SPAWN_SETSID 0x80
extern int pipe2(int fds[2], int flags);
// WIFEXITED and friends are macros Swift does not import.
static inline int g_exited(int status) { return WIFEXITED(status); }
static inline int g_exit_status(int status) { return WEXITSTATUS(status); }
static inline int g_signaled(int status) { return WIFSIGNALED(status); }
static inline int g_term_sig(int status) { return WTERMSIG(status); }
