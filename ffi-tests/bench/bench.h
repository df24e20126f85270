/* Shared helpers for the hakmem benchmark programs in ffi-tests/bench/.
 *
 * Every benchmark prints exactly one final line on stdout:
 *   RESULT name=<bench> key=value ... ops_per_sec=<n> peak_rss_kib=<n>
 * scripts/bench parses that line. Peak RSS is VmHWM from /proc/self/status,
 * read at the end of the run.
 *
 * Everything here is static so each program is one translation unit.
 */
#ifndef HAKMEM_BENCH_H
#define HAKMEM_BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- time ---------------------------------------------------------------- */

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- PRNG: splitmix64 for seeding, xorshift64* for the stream ----------- */

static inline uint64_t bench_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct { uint64_t s; } bench_rng;

static inline void bench_rng_seed(bench_rng *r, uint64_t seed)
{
    uint64_t s = seed;
    r->s = bench_splitmix64(&s);
    if (r->s == 0)
        r->s = 0x2545F4914F6CDD1Dull;
}

static inline uint64_t bench_rng_next(bench_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform-ish integer in [0, n) (multiply-shift, no division). */
static inline uint64_t bench_rng_below(bench_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)bench_rng_next(r) * n) >> 64);
}

/* Uniform integer in [lo, hi]. */
static inline size_t bench_rng_range(bench_rng *r, size_t lo, size_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (size_t)bench_rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* ---- argument parsing ----------------------------------------------------- */

static inline long bench_arg_long(int argc, char **argv, int i, long dflt)
{
    if (i >= argc)
        return dflt;
    char *end;
    errno = 0;
    long v = strtol(argv[i], &end, 0);
    if (errno || end == argv[i] || *end) {
        fprintf(stderr, "%s: bad integer argument %d: '%s'\n", argv[0], i, argv[i]);
        exit(2);
    }
    return v;
}

static inline double bench_arg_double(int argc, char **argv, int i, double dflt)
{
    if (i >= argc)
        return dflt;
    char *end;
    double v = strtod(argv[i], &end);
    if (end == argv[i] || *end) {
        fprintf(stderr, "%s: bad number argument %d: '%s'\n", argv[0], i, argv[i]);
        exit(2);
    }
    return v;
}

/* ---- memory / failure ----------------------------------------------------- */

/* Peak resident set (VmHWM) in KiB from /proc/self/status; -1 if unavailable. */
static inline long bench_peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            v = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static inline void bench_oom(const char *what, size_t size)
{
    fprintf(stderr, "bench: %s(%zu) returned NULL\n", what, size);
    exit(3);
}

static inline void bench_pthread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
    int e = pthread_create(t, NULL, fn, arg);
    if (e) {
        fprintf(stderr, "bench: pthread_create: %s\n", strerror(e));
        exit(4);
    }
}

/* Defeats dead-store/dead-allocation elimination. */
static volatile uintptr_t bench_sink;

static inline void bench_consume(const void *p)
{
    bench_sink += (uintptr_t)p;
}

/* Prints the final RESULT line. `extra` is "key=value ..." (may be ""). */
static inline void bench_result(const char *name, const char *extra,
                                double ops, double seconds)
{
    double rate = seconds > 0 ? ops / seconds : 0;
    printf("RESULT name=%s%s%s ops=%.0f seconds=%.4f ops_per_sec=%.0f peak_rss_kib=%ld\n",
           name, (extra && *extra) ? " " : "", extra ? extra : "",
           ops, seconds, rate, bench_peak_rss_kib());
    fflush(stdout);
}

#endif
