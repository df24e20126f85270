/* larson: the Larson & Krishnan server simulation ("Memory allocation for
 * long-running server applications", ISMM 1998), run the way mimalloc-bench
 * runs it.
 *
 *   larson [seconds=1] [min=8] [max=1000] [chunks=5000] [rounds=100] [threads=1] [seed=4141]
 *
 * The main thread first fills threads*chunks blocks of random size in
 * [min,max]. Each worker thread owns one slice of `chunks` blocks and
 * repeatedly replaces a random one: free it, malloc a new block of random size
 * in [min,max], write to it. After rounds*chunks replacements the worker
 * hands its slice to a newly created thread and exits, so blocks are freed by
 * threads other than the one that allocated them. After `seconds` the run
 * stops; throughput = replacements per second.
 */
#include "bench.h"

#include <stdatomic.h>
#include <unistd.h>

typedef struct {
    char **blocks;
    size_t *sizes;
    long chunks;
    long per_thread; /* replacements before handing over: rounds * chunks */
    size_t min, max;
    bench_rng rng;
    uint64_t replacements;
    uint64_t generations;
    atomic_int finished;
} __attribute__((aligned(64))) slice_t;

static atomic_int stop_flag;

static void touch(char *p, size_t n)
{
    /* Write the first word and the last byte, as a server filling a buffer
     * header and trailer would. */
    size_t w = n < 8 ? n : 8;
    memset(p, 0xA5, w);
    p[n - 1] = (char)n;
}

static void *worker(void *arg)
{
    slice_t *s = arg;
    long n = s->chunks;
    for (long i = 0; i < s->per_thread; i++) {
        size_t v = (size_t)bench_rng_below(&s->rng, (uint64_t)n);
        free(s->blocks[v]);
        size_t sz = bench_rng_range(&s->rng, s->min, s->max);
        char *p = malloc(sz);
        if (!p)
            bench_oom("malloc", sz);
        touch(p, sz);
        s->blocks[v] = p;
        s->sizes[v] = sz;
        s->replacements++;
        if ((i & 63) == 0 && atomic_load_explicit(&stop_flag, memory_order_relaxed))
            break;
    }
    if (atomic_load(&stop_flag)) {
        atomic_store(&s->finished, 1);
        return NULL;
    }
    /* Hand the slice to a fresh thread; this one exits. */
    s->generations++;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&t, &attr, worker, s);
    pthread_attr_destroy(&attr);
    if (e) {
        fprintf(stderr, "larson: pthread_create: %s\n", strerror(e));
        exit(4);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = bench_arg_double(argc, argv, 1, 1.0);
    long min = bench_arg_long(argc, argv, 2, 8);
    long max = bench_arg_long(argc, argv, 3, 1000);
    long chunks = bench_arg_long(argc, argv, 4, 5000);
    long rounds = bench_arg_long(argc, argv, 5, 100);
    long threads = bench_arg_long(argc, argv, 6, 1);
    long seed = bench_arg_long(argc, argv, 7, 4141);
    if (min < 1 || max < min || chunks < 1 || rounds < 1 || threads < 1 || seconds <= 0) {
        fprintf(stderr, "usage: %s [seconds] [min] [max] [chunks] [rounds] [threads] [seed]\n", argv[0]);
        return 2;
    }

    /* Each thread's slice on cache lines of its own: the worker writes its
     * slice on every replacement, and slices sharing a line (as a plain
     * calloc'd array puts them, depending on where the allocator placed it)
     * made the benchmark measure its own false sharing. */
    slice_t *sl = NULL;
    if (posix_memalign((void **)&sl, 64, sizeof *sl * (size_t)threads))
        sl = NULL;
    else
        memset(sl, 0, sizeof *sl * (size_t)threads);
    char **blocks = malloc(sizeof(char *) * (size_t)(threads * chunks));
    size_t *sizes = malloc(sizeof(size_t) * (size_t)(threads * chunks));
    if (!sl || !blocks || !sizes)
        bench_oom("malloc", 0);

    /* Warm-up: the main thread allocates every initial block. */
    bench_rng r0;
    bench_rng_seed(&r0, (uint64_t)seed);
    for (long i = 0; i < threads * chunks; i++) {
        size_t sz = bench_rng_range(&r0, (size_t)min, (size_t)max);
        blocks[i] = malloc(sz);
        if (!blocks[i])
            bench_oom("malloc", sz);
        touch(blocks[i], sz);
        sizes[i] = sz;
    }

    for (long t = 0; t < threads; t++) {
        sl[t].blocks = blocks + t * chunks;
        sl[t].sizes = sizes + t * chunks;
        sl[t].chunks = chunks;
        sl[t].per_thread = rounds * chunks;
        sl[t].min = (size_t)min;
        sl[t].max = (size_t)max;
        bench_rng_seed(&sl[t].rng, (uint64_t)seed * 7919u + (uint64_t)t + 1);
    }

    double t0 = bench_now();
    for (long t = 0; t < threads; t++) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &attr, worker, &sl[t])) {
            fprintf(stderr, "larson: pthread_create failed\n");
            return 4;
        }
        pthread_attr_destroy(&attr);
    }
    struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
    nanosleep(&ts, NULL);
    atomic_store(&stop_flag, 1);
    for (long t = 0; t < threads; t++)
        while (!atomic_load(&sl[t].finished))
            usleep(200);
    double elapsed = bench_now() - t0;

    uint64_t total = 0, gens = 0;
    for (long t = 0; t < threads; t++) {
        total += sl[t].replacements;
        gens += sl[t].generations;
    }
    for (long i = 0; i < threads * chunks; i++)
        free(blocks[i]);

    char extra[160];
    snprintf(extra, sizeof extra, "threads=%ld min=%ld max=%ld chunks=%ld rounds=%ld handoffs=%llu",
             threads, min, max, chunks, rounds, (unsigned long long)gens);
    bench_result("larson", extra, (double)total, elapsed);
    free(blocks);
    free(sizes);
    free(sl);
    return 0;
}
