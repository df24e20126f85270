/* large: big buffers (1-32 MiB by default) allocated, written and freed.
 *
 *   large [iters=400] [min_kib=1024] [max_kib=32768] [live=4]
 *
 * Keeps `live` buffers; each iteration frees a random one, allocates a new
 * one of random size in [min_kib,max_kib] KiB and writes one byte in every
 * 4 KiB page of it (so page faults and memory reuse by the allocator count).
 * Throughput = buffers per second; RSS shows how much the allocator keeps.
 */
#include "bench.h"

static void touch_pages(char *p, size_t n)
{
    for (size_t o = 0; o < n; o += 4096)
        p[o] = (char)o;
    p[n - 1] = 1;
}

int main(int argc, char **argv)
{
    long iters = bench_arg_long(argc, argv, 1, 400);
    long min_kib = bench_arg_long(argc, argv, 2, 1024);
    long max_kib = bench_arg_long(argc, argv, 3, 32768);
    long live = bench_arg_long(argc, argv, 4, 4);
    if (iters < 1 || min_kib < 1 || max_kib < min_kib || live < 1) {
        fprintf(stderr, "usage: %s [iters] [min_kib] [max_kib] [live]\n", argv[0]);
        return 2;
    }
    bench_rng r;
    bench_rng_seed(&r, 0x1A46E);
    char **buf = calloc((size_t)live, sizeof(char *));
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        size_t k = (size_t)bench_rng_below(&r, (uint64_t)live);
        free(buf[k]);
        size_t sz = bench_rng_range(&r, (size_t)min_kib * 1024, (size_t)max_kib * 1024);
        char *p = malloc(sz);
        if (!p)
            bench_oom("malloc", sz);
        touch_pages(p, sz);
        buf[k] = p;
    }
    double t = bench_now() - t0;
    for (long k = 0; k < live; k++)
        free(buf[k]);
    free(buf);
    char extra[160];
    snprintf(extra, sizeof extra, "min_kib=%ld max_kib=%ld live=%ld", min_kib, max_kib, live);
    bench_result("large", extra, (double)iters, t);
    return 0;
}
