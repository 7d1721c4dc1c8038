// libcurl, loaded when first used (dlopen) instead of linked: the daemon and every CLI
// command start without mapping libcurl and the thirty libraries it needs (TLS, Kerberos,
// LDAP, SSH, ...), which were about a third of a CLI command's start; only the Kubernetes
// client needs it. Also non-variadic wrappers around libcurl's variadic entry points, which
// Swift cannot call. The header gives the types and constants only.
#ifndef GANTRY_CCURL_SHIM_H
#define GANTRY_CCURL_SHIM_H
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

typedef size_t (*gantry_curl_data_cb)(char *data, size_t size, size_t count, void *ctx);
typedef int (*gantry_curl_xferinfo_cb)(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

struct gantry_curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *h);
    void (*easy_reset)(CURL *h);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_setopt)(CURL *h, CURLoption o, ...);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO i, ...);
    const char *(*easy_strerror)(CURLcode c);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
};

struct gantry_curl_loaded {
    int state;                 // 0: not tried; 1: loaded; -1: not available (see error)
    struct gantry_curl_api fns;
    char error[512];
};

static void gantry_curl_load(struct gantry_curl_loaded *s) {
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libcurl.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(s->error, sizeof s->error, "libcurl could not be loaded (install libcurl4): %s", e ? e : "not found");
        __atomic_store_n(&s->state, -1, __ATOMIC_RELEASE);
        return;
    }
#define GANTRY_CURL_SYM(field, name) \
    *(void **)(&s->fns.field) = dlsym(h, name); \
    if (!s->fns.field) { \
        snprintf(s->error, sizeof s->error, "libcurl has no %s", name); \
        __atomic_store_n(&s->state, -1, __ATOMIC_RELEASE); \
        return; \
    }
    GANTRY_CURL_SYM(global_init, "curl_global_init")
    GANTRY_CURL_SYM(easy_init, "curl_easy_init")
    GANTRY_CURL_SYM(easy_cleanup, "curl_easy_cleanup")
    GANTRY_CURL_SYM(easy_reset, "curl_easy_reset")
    GANTRY_CURL_SYM(easy_perform, "curl_easy_perform")
    GANTRY_CURL_SYM(easy_setopt, "curl_easy_setopt")
    GANTRY_CURL_SYM(easy_getinfo, "curl_easy_getinfo")
    GANTRY_CURL_SYM(easy_strerror, "curl_easy_strerror")
    GANTRY_CURL_SYM(slist_append, "curl_slist_append")
    GANTRY_CURL_SYM(slist_free_all, "curl_slist_free_all")
#undef GANTRY_CURL_SYM
    __atomic_store_n(&s->state, 1, __ATOMIC_RELEASE);
}

/// libcurl's entry points, loaded on the first call (any thread, once).
static inline struct gantry_curl_loaded *gantry_curl(void) {
    // Function-local (emitted with the function: Swift's importer does not emit file-scope
    // statics of a header).
    static struct gantry_curl_loaded loaded;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    if (__atomic_load_n(&loaded.state, __ATOMIC_ACQUIRE) == 0) {
        pthread_mutex_lock(&lock);
        if (loaded.state == 0) gantry_curl_load(&loaded);
        pthread_mutex_unlock(&lock);
    }
    return &loaded;
}
#define gantry_curl_fns (gantry_curl()->fns)

/// Whether libcurl is there (loading it the first time).
static inline int gantry_curl_available(void) { return gantry_curl()->state == 1; }
/// Why libcurl is not available ("" when it is).
static inline const char *gantry_curl_error(void) { return gantry_curl()->error; }

// Each wrapper is called only once `gantry_curl_available()` said yes (an easy handle exists).
static inline CURLcode gantry_curl_global_init(void) { return gantry_curl_available() ? gantry_curl_fns.global_init(CURL_GLOBAL_DEFAULT) : CURLE_FAILED_INIT; }
static inline CURL *gantry_curl_easy_init(void) { return gantry_curl_available() ? gantry_curl_fns.easy_init() : NULL; }
static inline void gantry_curl_easy_cleanup(CURL *h) { if (gantry_curl_available()) gantry_curl_fns.easy_cleanup(h); }
static inline void gantry_curl_easy_reset(CURL *h) { if (gantry_curl_available()) gantry_curl_fns.easy_reset(h); }
static inline CURLcode gantry_curl_easy_perform(CURL *h) { return gantry_curl_available() ? gantry_curl_fns.easy_perform(h) : CURLE_FAILED_INIT; }
static inline const char *gantry_curl_easy_strerror(CURLcode c) { return gantry_curl_available() ? gantry_curl_fns.easy_strerror(c) : gantry_curl_error(); }
static inline struct curl_slist *gantry_curl_slist_append(struct curl_slist *l, const char *s) {
    return gantry_curl_available() ? gantry_curl_fns.slist_append(l, s) : NULL;
}
static inline void gantry_curl_slist_free_all(struct curl_slist *l) { if (gantry_curl_available() && l) gantry_curl_fns.slist_free_all(l); }

#define GANTRY_CURL_SETOPT(h, o, v) (gantry_curl_available() ? gantry_curl_fns.easy_setopt((h), (o), (v)) : CURLE_FAILED_INIT)
static inline CURLcode gantry_curl_setopt_long(CURL *h, CURLoption o, long v) { return GANTRY_CURL_SETOPT(h, o, v); }
static inline CURLcode gantry_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return GANTRY_CURL_SETOPT(h, o, v); }
static inline CURLcode gantry_curl_setopt_ptr(CURL *h, CURLoption o, void *v) { return GANTRY_CURL_SETOPT(h, o, v); }
static inline CURLcode gantry_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return GANTRY_CURL_SETOPT(h, o, v); }
static inline CURLcode gantry_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return GANTRY_CURL_SETOPT(h, o, v); }
/// Write and header callbacks (CURLOPT_WRITEFUNCTION, CURLOPT_HEADERFUNCTION).
static inline CURLcode gantry_curl_setopt_data_cb(CURL *h, CURLoption o, gantry_curl_data_cb f) { return GANTRY_CURL_SETOPT(h, o, f); }
static inline CURLcode gantry_curl_setopt_xferinfo_cb(CURL *h, CURLoption o, gantry_curl_xferinfo_cb f) { return GANTRY_CURL_SETOPT(h, o, f); }
/// A `_BLOB` option (CAINFO_BLOB, SSLCERT_BLOB, SSLKEY_BLOB); libcurl copies the bytes.
static inline CURLcode gantry_curl_setopt_blob(CURL *h, CURLoption o, const void *data, size_t len) {
    struct curl_blob blob;
    blob.data = (void *)data;
    blob.len = len;
    blob.flags = CURL_BLOB_COPY;
    return GANTRY_CURL_SETOPT(h, o, &blob);
}
static inline CURLcode gantry_curl_getinfo_long(CURL *h, CURLINFO i, long *v) {
    return gantry_curl_available() ? gantry_curl_fns.easy_getinfo(h, i, v) : CURLE_FAILED_INIT;
}

#endif
