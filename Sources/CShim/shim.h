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
#include <string.h>
#include <malloc.h>
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

// Running a replica as another Unix account (gantry-shim --user). The supervisor stays root
// (it writes the records the daemon reads); a forked child drops to the account and execs.
// Everything the child needs is prepared by the parent (the group list included, found with
// getgrouplist there): between fork and exec the child makes only async-signal-safe system
// calls, so this is safe even in a process with threads.
#include <fcntl.h>
#include <grp.h>
#include <errno.h>
// The step of g_spawn_as that failed (`*stage`), for messages.
#define G_STAGE_PIPE 1
#define G_STAGE_FORK 2
#define G_STAGE_SETPGID 3
#define G_STAGE_STDIN 4
#define G_STAGE_STDOUT 5
#define G_STAGE_SETGROUPS 6
#define G_STAGE_SETGID 7
#define G_STAGE_SETUID 8
#define G_STAGE_VERIFY 9
#define G_STAGE_CHDIR 10
#define G_STAGE_EXEC 11
static inline void g_child_fail(int fd, int stage) {
    int msg[2] = { stage, errno };
    ssize_t r = write(fd, msg, sizeof msg);
    (void)r;
    _exit(127);
}
static inline void g_close_from(int from, int keep) {
    // Everything from `from` up except `keep` (the error pipe, closed by exec).
#ifdef SYS_close_range
    if (keep >= from) {
        if (keep > from && syscall(SYS_close_range, (unsigned)from, (unsigned)(keep - 1), 0) != 0) goto slow;
        if (syscall(SYS_close_range, (unsigned)(keep + 1), ~0U, 0) != 0) goto slow;
    } else if (syscall(SYS_close_range, (unsigned)from, ~0U, 0) != 0) goto slow;
    return;
slow:
#endif
    {
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 65536) max = 65536;
        for (int fd = from; fd < max; fd++) if (fd != keep) close(fd);
    }
}
/// Starts `path` as uid/gid with the given supplementary groups: a new process group, every
/// signal at its default and none blocked, stdin /dev/null, stdout and stderr on `outfd`, no
/// other descriptors, then the working directory (entered as the account). After setuid it
/// checks that the old identity cannot be taken back (setuid(0) and seteuid(0) must fail when
/// uid is not 0). Returns the pid, or -1 with `*stage` (G_STAGE_*) and `*err` (errno; 0 for
/// G_STAGE_VERIFY) set; a child that failed has been reaped.
static inline int g_spawn_as(const char *path, char *const argv[], char *const envp[], int outfd, const char *workdir,
                             unsigned uid, unsigned gid, int ngroups, const unsigned *groups, int *stage, int *err) {
    int ep[2];
    *stage = 0; *err = 0;
    if (pipe2(ep, O_CLOEXEC) != 0) { *stage = G_STAGE_PIPE; *err = errno; return -1; }
    pid_t pid = fork();
    if (pid < 0) { *stage = G_STAGE_FORK; *err = errno; close(ep[0]); close(ep[1]); return -1; }
    if (pid == 0) {
        int w = ep[1];
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < 65; s++) sigaction(s, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (setpgid(0, 0) != 0) g_child_fail(w, G_STAGE_SETPGID);
        int nul = open("/dev/null", O_RDONLY);
        if (nul < 0) g_child_fail(w, G_STAGE_STDIN);
        if (nul != 0) { if (dup2(nul, 0) < 0) g_child_fail(w, G_STAGE_STDIN); close(nul); }
        if (outfd == 1) { if (fcntl(1, F_SETFD, 0) != 0) g_child_fail(w, G_STAGE_STDOUT); }
        else if (dup2(outfd, 1) < 0) g_child_fail(w, G_STAGE_STDOUT);
        if (dup2(1, 2) < 0) g_child_fail(w, G_STAGE_STDOUT);
        if (w < 3) { int nw = fcntl(w, F_DUPFD_CLOEXEC, 3); if (nw < 0) g_child_fail(w, G_STAGE_STDOUT); w = nw; }
        g_close_from(3, w);
        if (setgroups((size_t)ngroups, (const gid_t *)groups) != 0) g_child_fail(w, G_STAGE_SETGROUPS);
        if (setgid((gid_t)gid) != 0) g_child_fail(w, G_STAGE_SETGID);
        if (setuid((uid_t)uid) != 0) g_child_fail(w, G_STAGE_SETUID);
        if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid) { errno = 0; g_child_fail(w, G_STAGE_VERIFY); }
        if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) { errno = 0; g_child_fail(w, G_STAGE_VERIFY); }
        if (chdir(workdir) != 0) g_child_fail(w, G_STAGE_CHDIR);
        execve(path, argv, envp);
        g_child_fail(w, G_STAGE_EXEC);
    }
    close(ep[1]);
    int msg[2] = { 0, 0 };
    ssize_t n;
    do { n = read(ep[0], msg, sizeof msg); } while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof msg) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        *stage = msg[0]; *err = msg[1];
        return -1;
    }
    return pid;
}
// At most `n` malloc arenas (glibc makes up to 8 per core, each keeping its own freed memory).
static inline int g_limit_malloc_arenas(int n) { return mallopt(M_ARENA_MAX, n); }
// Allocations of at least `bytes` are mmapped and unmapped when freed. Setting it also stops
// glibc from raising the threshold after each such free (up to 32 MB), which otherwise lets
// the big transient arrays of a load land in the heap and stay there as free space.
static inline int g_malloc_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }
// Hands free heap pages back to the kernel (every arena, not just the top of the heap).
static inline int g_malloc_trim(void) { return malloc_trim(0); }
