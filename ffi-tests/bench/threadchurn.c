/* threadchurn: short-lived threads, created two at a time.
 *
 *   threadchurn [rounds=8000] [ops=300] [min=16] [max=1024]
 *
 * Each round creates two threads and joins them. Each thread mallocs `ops`
 * blocks of random size in [min,max] (writing the first bytes) and frees them
 * in a shuffled order, then exits, so per-thread allocator state is set up
 * and torn down every time. Throughput = threads per second.
 */
#include "bench.h"

typedef struct {
    long ops;
    size_t min, max;
    uint64_t seed;
} job_t;

static void *run(void *arg)
{
    job_t *j = arg;
    bench_rng r;
    bench_rng_seed(&r, j->seed);
    void *v[1024];
    long n = j->ops < 1024 ? j->ops : 1024;
    for (long i = 0; i < n; i++) {
        size_t sz = bench_rng_range(&r, j->min, j->max);
        char *p = malloc(sz);
        if (!p)
            bench_oom("malloc", sz);
        memset(p, 1, sz < 16 ? sz : 16);
        v[i] = p;
    }
    for (long i = n - 1; i > 0; i--) {
        size_t k = (size_t)bench_rng_below(&r, (uint64_t)i + 1);
        void *t = v[i];
        v[i] = v[k];
        v[k] = t;
    }
    for (long i = 0; i < n; i++)
        free(v[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    long rounds = bench_arg_long(argc, argv, 1, 8000);
    long ops = bench_arg_long(argc, argv, 2, 300);
    long min = bench_arg_long(argc, argv, 3, 16);
    long max = bench_arg_long(argc, argv, 4, 1024);
    if (rounds < 1 || ops < 1 || ops > 1024 || min < 1 || max < min) {
        fprintf(stderr, "usage: %s [rounds] [ops<=1024] [min] [max]\n", argv[0]);
        return 2;
    }
    double t0 = bench_now();
    for (long r = 0; r < rounds; r++) {
        pthread_t a, b;
        job_t ja = { ops, (size_t)min, (size_t)max, (uint64_t)r * 2 };
        job_t jb = { ops, (size_t)min, (size_t)max, (uint64_t)r * 2 + 1 };
        bench_pthread_create(&a, run, &ja);
        bench_pthread_create(&b, run, &jb);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
    }
    double t = bench_now() - t0;
    char extra[160];
    snprintf(extra, sizeof extra, "threads=2 rounds=%ld ops=%ld min=%ld max=%ld", rounds, ops, min, max);
    bench_result("threadchurn", extra, (double)rounds * 2, t);
    return 0;
}
