/* mid: medium-size blocks (1-64 KiB by default) in a random working set.
 *
 *   mid [threads=1] [ops=3000000] [slots=512] [min=1024] [max=65536]
 *
 * Each thread starts with `slots` live blocks; each step frees a random one
 * and replaces it with a block of random size in [min,max], writing its first
 * 64 bytes and its last byte. Throughput = replacements per second.
 */
#include "bench.h"

typedef struct {
    long ops, slots;
    size_t min, max;
    uint64_t seed;
    double t;
} job_t;

static void fill(char *p, size_t n)
{
    memset(p, 0x5A, n < 64 ? n : 64);
    p[n - 1] = 1;
}

static void *run(void *arg)
{
    job_t *j = arg;
    bench_rng r;
    bench_rng_seed(&r, j->seed);
    char **slot = malloc(sizeof(char *) * (size_t)j->slots);
    if (!slot)
        bench_oom("malloc", 0);
    for (long k = 0; k < j->slots; k++) {
        size_t sz = bench_rng_range(&r, j->min, j->max);
        if (!(slot[k] = malloc(sz)))
            bench_oom("malloc", sz);
        fill(slot[k], sz);
    }
    double t0 = bench_now();
    for (long i = 0; i < j->ops; i++) {
        size_t k = (size_t)bench_rng_below(&r, (uint64_t)j->slots);
        free(slot[k]);
        size_t sz = bench_rng_range(&r, j->min, j->max);
        char *p = malloc(sz);
        if (!p)
            bench_oom("malloc", sz);
        fill(p, sz);
        slot[k] = p;
    }
    j->t = bench_now() - t0;
    for (long k = 0; k < j->slots; k++)
        free(slot[k]);
    free(slot);
    return NULL;
}

int main(int argc, char **argv)
{
    long threads = bench_arg_long(argc, argv, 1, 1);
    long ops = bench_arg_long(argc, argv, 2, 3000000);
    long slots = bench_arg_long(argc, argv, 3, 512);
    long min = bench_arg_long(argc, argv, 4, 1024);
    long max = bench_arg_long(argc, argv, 5, 65536);
    if (threads < 1 || ops < 1 || slots < 1 || min < 1 || max < min) {
        fprintf(stderr, "usage: %s [threads] [ops] [slots] [min] [max]\n", argv[0]);
        return 2;
    }
    job_t *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    double t0 = bench_now();
    for (long t = 0; t < threads; t++) {
        jobs[t] = (job_t){ ops, slots, (size_t)min, (size_t)max, 0xA11CE + (uint64_t)t * 31, 0 };
        if (t)
            bench_pthread_create(&th[t], run, &jobs[t]);
    }
    run(&jobs[0]);
    for (long t = 1; t < threads; t++)
        pthread_join(th[t], NULL);
    (void)t0;
    double worst = 0;
    for (long t = 0; t < threads; t++)
        if (jobs[t].t > worst)
            worst = jobs[t].t;
    char extra[192];
    snprintf(extra, sizeof extra, "threads=%ld slots=%ld min=%ld max=%ld", threads, slots, min, max);
    bench_result("mid", extra, (double)ops * (double)threads, worst);
    free(jobs);
    free(th);
    return 0;
}
