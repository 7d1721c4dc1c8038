#ifndef GANTRY_CMICROHTTPD_SHIM_H
#define GANTRY_CMICROHTTPD_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

// Swift cannot call C variadic functions: non-variadic wrappers for the calls Gantry's HTTP
// server makes.

/// Keeps URLs and query arguments as sent (percent-escapes included): the server decodes
/// path segments itself, so an escaped "/" inside a segment stays inside it.
static inline size_t g_mhd_no_unescape(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls; (void)c;
    return strlen(s);
}

/// Starts a daemon on an already bound and listening socket `listen_fd`.
/// `connection_limit` caps concurrent connections; `timeout_s` closes idle ones (0: never).
static inline struct MHD_Daemon *g_mhd_start(unsigned int flags, int listen_fd,
                                             MHD_AccessHandlerCallback handler, void *handler_cls,
                                             MHD_RequestCompletedCallback completed, void *completed_cls,
                                             unsigned int timeout_s, unsigned int connection_limit) {
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_cls,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
                            MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, connection_limit,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
                            MHD_OPTION_UNESCAPE_CALLBACK, g_mhd_no_unescape, NULL,
                            MHD_OPTION_END);
}

/// The client's address of a connection, or NULL.
static inline const struct sockaddr *g_mhd_client_address(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return i == NULL ? NULL : i->client_addr;
}

/// The connection's socket, or -1.
static inline int g_mhd_connection_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return i == NULL ? -1 : (int)i->connect_fd;
}

static inline uint64_t g_mhd_size_unknown(void) { return MHD_SIZE_UNKNOWN; }

/* This connection's idle timeout in seconds (a stream may stay quiet for minutes: a watch,
   a log follow). MHD_set_connection_option is variadic. */
static inline int g_mhd_set_idle_timeout(struct MHD_Connection *c, unsigned int seconds) {
  return MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, seconds) == MHD_YES;
}
static inline ssize_t g_mhd_end_of_stream(void) { return MHD_CONTENT_READER_END_OF_STREAM; }
static inline ssize_t g_mhd_end_with_error(void) { return MHD_CONTENT_READER_END_WITH_ERROR; }

#endif
