/* Shared helpers for the hakmem C test programs in ffi-tests/.
 *
 * Every program includes this header first (it defines _GNU_SOURCE), calls
 * hk_start() at the top of main() and returns hk_finish() at the end.
 *
 * Conventions:
 *  - CHECK(expr) records a failure and prints "FAIL file:line: expr" to stderr;
 *    CHECKF(expr, fmt, ...) adds detail. Both are thread-safe.
 *  - A program exits 0 when no check failed, 1 otherwise.
 *  - With EXPECT_HAKMEM=1 in the environment (the Rust harness sets it),
 *    hk_start() fails the program unless malloc & co. resolve to hakmem, so a
 *    mis-linked or un-preloaded run cannot pass by testing glibc instead.
 */
#ifndef HAKMEM_FFI_COMMON_H
#define HAKMEM_FFI_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int hk_failures;
static const char *hk_prog = "test";

#define CHECK(expr)                                                           \
    do {                                                                      \
        if (!(expr)) {                                                        \
            hk_fail_at(__FILE__, __LINE__, #expr, NULL);                      \
        }                                                                     \
    } while (0)

/* CHECK with a printf-style explanation. */
#define CHECKF(expr, ...)                                                     \
    do {                                                                      \
        if (!(expr)) {                                                        \
            char hk_msg_[256];                                                \
            snprintf(hk_msg_, sizeof hk_msg_, __VA_ARGS__);                   \
            hk_fail_at(__FILE__, __LINE__, #expr, hk_msg_);                   \
        }                                                                     \
    } while (0)

/* Failures beyond this many are counted but not printed. */
#define HK_MAX_PRINTED 50

static inline void hk_fail_at(const char *file, int line, const char *expr, const char *msg)
{
    int n = atomic_fetch_add(&hk_failures, 1);
    if (n < HK_MAX_PRINTED) {
        if (msg)
            fprintf(stderr, "FAIL %s:%d: %s (%s)\n", file, line, expr, msg);
        else
            fprintf(stderr, "FAIL %s:%d: %s\n", file, line, expr);
        fflush(stderr);
    } else if (n == HK_MAX_PRINTED) {
        fprintf(stderr, "FAIL: further failures not printed\n");
    }
}

static inline int hk_failed(void) { return atomic_load(&hk_failures); }

/* ---- which allocator are we testing? ---------------------------------- */

/* Shared object that defines the function `fn` as this program calls it. */
static inline const char *hk_owner(void *fn)
{
    Dl_info info;
    if (fn && dladdr(fn, &info) && info.dli_fname)
        return info.dli_fname;
    return "?";
}

static inline void *hk_version_fn(void)
{
    return dlsym(RTLD_DEFAULT, "hakmem_version");
}

/* hakmem_version() if hakmem is loaded in this process, else NULL. */
static inline const char *hk_hakmem_version(void)
{
    const char *(*ver)(void) = (const char *(*)(void))hk_version_fn();
    return ver ? ver() : NULL;
}

/* True when `fn` is defined in the object that defines hakmem_version (by
 * object, not by file name: the library may be a renamed copy). */
static inline int hk_from_hakmem(void *fn)
{
    Dl_info a, b;
    void *ver = hk_version_fn();
    return ver && fn && dladdr(ver, &a) && dladdr(fn, &b) && a.dli_fbase == b.dli_fbase;
}

/* True when the malloc this program calls is hakmem's. */
static inline int hk_is_hakmem(void)
{
    return hk_from_hakmem((void *)malloc);
}

static inline int hk_expect_hakmem(void)
{
    const char *e = getenv("EXPECT_HAKMEM");
    return e && strcmp(e, "1") == 0;
}

static inline void hk_start(const char *name)
{
    hk_prog = name;
    const char *ver = hk_hakmem_version();
    printf("%s: allocator: malloc from %s, hakmem_version %s\n", name,
           hk_owner((void *)malloc), ver ? ver : "(not loaded)");
    fflush(stdout);
    if (!hk_expect_hakmem())
        return;
    struct { const char *name; void *fn; } fns[] = {
        {"malloc", (void *)malloc},
        {"free", (void *)free},
        {"calloc", (void *)calloc},
        {"realloc", (void *)realloc},
        {"posix_memalign", (void *)posix_memalign},
        {"aligned_alloc", (void *)aligned_alloc},
        {"malloc_usable_size", (void *)malloc_usable_size},
    };
    if (!ver) {
        fprintf(stderr, "FAIL %s: EXPECT_HAKMEM=1 but hakmem_version is not defined in this "
                        "process (libhakmem.so not loaded?)\n", name);
        exit(1);
    }
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        if (!hk_from_hakmem(fns[i].fn)) {
            fprintf(stderr, "FAIL %s: EXPECT_HAKMEM=1 but %s resolves to %s, not hakmem (%s)\n",
                    name, fns[i].name, hk_owner(fns[i].fn), hk_owner(hk_version_fn()));
            exit(1);
        }
    }
}

static inline int hk_finish(void)
{
    int n = hk_failed();
    if (n) {
        fprintf(stderr, "%s: %d check(s) failed\n", hk_prog, n);
        return 1;
    }
    printf("%s: ok\n", hk_prog);
    return 0;
}

/* ---- randomness and patterns ------------------------------------------ */

static inline uint64_t hk_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* xorshift64*: state must be non-zero. */
static inline uint64_t hk_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform-ish in [lo, hi]. */
static inline size_t hk_range(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)(hk_rand(s) % (uint64_t)(hi - lo + 1));
}

/* The pattern byte at offset i for key k: byte (i % 8) of k ^ (i / 8) * phi.
 * Position-based, so a prefix of a filled block verifies as a shorter block. */
static inline uint64_t hk_pat_word(uint64_t k, size_t i)
{
    return k ^ ((uint64_t)(i >> 3) * 0x9e3779b97f4a7c15ULL);
}

/* Fill p[0..n) with a pattern determined by key. */
static inline void hk_fill(void *p, size_t n, uint64_t key)
{
    unsigned char *b = p;
    uint64_t k = hk_mix64(key) | 1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = hk_pat_word(k, i);
        memcpy(b + i, &w, 8);
    }
    for (; i < n; i++)
        b[i] = (unsigned char)(hk_pat_word(k, i) >> ((i & 7) * 8));
}

/* Offset of the first byte of p[0..n) that differs from hk_fill(key), or -1. */
static inline long hk_verify(const void *p, size_t n, uint64_t key)
{
    const unsigned char *b = p;
    uint64_t k = hk_mix64(key) | 1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = hk_pat_word(k, i), got;
        memcpy(&got, b + i, 8);
        if (got != w)
            break;
    }
    for (; i < n; i++)
        if (b[i] != (unsigned char)(hk_pat_word(k, i) >> ((i & 7) * 8)))
            return (long)i;
    return -1;
}

/* Offset of the first non-zero byte of p[0..n), or -1. */
static inline long hk_first_nonzero(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        if (w)
            break;
    }
    for (; i < n; i++)
        if (b[i])
            return (long)i;
    return -1;
}

/* ---- time and /proc --------------------------------------------------- */

static inline double hk_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A "Vm...:" field of /proc/self/status in KiB, or -1. Does not call malloc. */
static inline long hk_status_kib(const char *field)
{
    char buf[8192];
    long val = -1;
    /* read(2) straight into a stack buffer: stdio would allocate. */
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = 0, r;
    while (n < (ssize_t)sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += r;
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    size_t flen = strlen(field);
    for (char *line = buf; line && *line;) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            val = strtol(line + flen + 1, NULL, 10);
            break;
        }
        char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    return val;
}

static inline size_t hk_page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

#endif
