/* random_mixed: a random working-set workload.
 *
 *   random_mixed [threads=1] [min=16] [max=1024] [slots=8192] [ops=20000000]
 *
 * Each thread has its own array of `slots` slots, all empty at start. Each of
 * its `ops` steps picks a random slot: if the slot holds a block it is freed,
 * otherwise it is filled with malloc of a random size in [min,max] (min == max
 * gives a fixed size) and the first bytes are written. So about half the
 * slots are live at any time. `ops` counts steps per thread; throughput =
 * total steps (mallocs + frees) per second.
 */
#include "bench.h"

typedef struct {
    long slots, ops;
    size_t min, max;
    uint64_t seed;
    pthread_barrier_t *bar;
    double t_start, t_end;
} job_t;

static void *run(void *arg)
{
    job_t *j = arg;
    char **slot = calloc((size_t)j->slots, sizeof(char *));
    if (!slot)
        bench_oom("calloc", (size_t)j->slots * sizeof(char *));
    bench_rng r;
    bench_rng_seed(&r, j->seed);
    pthread_barrier_wait(j->bar);
    j->t_start = bench_now();
    const uint64_t n = (uint64_t)j->slots;
    for (long i = 0; i < j->ops; i++) {
        size_t k = (size_t)bench_rng_below(&r, n);
        char *p = slot[k];
        if (p) {
            free(p);
            slot[k] = NULL;
        } else {
            size_t sz = bench_rng_range(&r, j->min, j->max);
            p = malloc(sz);
            if (!p)
                bench_oom("malloc", sz);
            memset(p, (int)i, sz < 16 ? sz : 16);
            slot[k] = p;
        }
    }
    j->t_end = bench_now();
    for (long k = 0; k < j->slots; k++)
        free(slot[k]);
    free(slot);
    return NULL;
}

int main(int argc, char **argv)
{
    long threads = bench_arg_long(argc, argv, 1, 1);
    long min = bench_arg_long(argc, argv, 2, 16);
    long max = bench_arg_long(argc, argv, 3, 1024);
    long slots = bench_arg_long(argc, argv, 4, 8192);
    long ops = bench_arg_long(argc, argv, 5, 20000000);
    if (threads < 1 || min < 1 || max < min || slots < 1 || ops < 1) {
        fprintf(stderr, "usage: %s [threads] [min] [max] [slots] [ops]\n", argv[0]);
        return 2;
    }
    job_t *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    for (long t = 0; t < threads; t++) {
        jobs[t] = (job_t){ slots, ops, (size_t)min, (size_t)max, 0x5EED0000u + (uint64_t)t, &bar, 0, 0 };
    }
    for (long t = 1; t < threads; t++)
        bench_pthread_create(&th[t], run, &jobs[t]);
    run(&jobs[0]);
    for (long t = 1; t < threads; t++)
        pthread_join(th[t], NULL);
    double start = jobs[0].t_start, end = jobs[0].t_end;
    for (long t = 1; t < threads; t++) {
        if (jobs[t].t_start < start) start = jobs[t].t_start;
        if (jobs[t].t_end > end) end = jobs[t].t_end;
    }
    char extra[192];
    snprintf(extra, sizeof extra, "threads=%ld min=%ld max=%ld slots=%ld", threads, min, max, slots);
    bench_result("random_mixed", extra, (double)ops * (double)threads, end - start);
    pthread_barrier_destroy(&bar);
    free(jobs);
    free(th);
    return 0;
}
