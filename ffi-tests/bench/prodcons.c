/* prodcons: producer/consumer; every free is remote.
 *
 *   prodcons [pairs=1] [blocks=2000000] [min=16] [max=512] [ring=1024]
 *
 * `pairs` producer threads and as many consumer threads; producer i mallocs
 * blocks of random size in [min,max], writes a tag into each and pushes it
 * through a single-producer/single-consumer ring of `ring` entries to
 * consumer i, which checks the tag and frees the block. `blocks` is the total
 * over all pairs. A full (or empty) ring makes the thread spin briefly and
 * then yield. Throughput = blocks per second (one malloc + one remote free).
 */
#include "bench.h"

#include <sched.h>
#include <stdatomic.h>

typedef struct {
    _Alignas(64) atomic_size_t head; /* written by the consumer */
    _Alignas(64) atomic_size_t tail; /* written by the producer */
    _Alignas(64) void **slot;
    size_t mask;
    long count;
    size_t min, max;
    uint64_t seed;
    uint64_t yields;
} ring_t;

static inline void backoff(unsigned *spins, uint64_t *yields)
{
    if (++*spins < 64) {
        __builtin_ia32_pause();
    } else {
        *spins = 0;
        ++*yields;
        sched_yield();
    }
}

static void *producer(void *arg)
{
    ring_t *q = arg;
    bench_rng r;
    bench_rng_seed(&r, q->seed);
    size_t tail = 0;
    uint64_t y = 0;
    for (long i = 0; i < q->count; i++) {
        size_t sz = bench_rng_range(&r, q->min, q->max);
        uint64_t *p = malloc(sz);
        if (!p)
            bench_oom("malloc", sz);
        if (sz >= 8)
            p[0] = (uint64_t)i;
        unsigned spins = 0;
        while (tail - atomic_load_explicit(&q->head, memory_order_acquire) > q->mask)
            backoff(&spins, &y);
        q->slot[tail & q->mask] = p;
        atomic_store_explicit(&q->tail, ++tail, memory_order_release);
    }
    q->yields += y;
    return NULL;
}

static void *consumer(void *arg)
{
    ring_t *q = arg;
    size_t head = 0;
    uint64_t y = 0, bad = 0;
    for (long i = 0; i < q->count; i++) {
        unsigned spins = 0;
        while (atomic_load_explicit(&q->tail, memory_order_acquire) == head)
            backoff(&spins, &y);
        uint64_t *p = q->slot[head & q->mask];
        if (q->min >= 8 && p[0] != (uint64_t)i)
            bad++;
        free(p);
        atomic_store_explicit(&q->head, ++head, memory_order_release);
    }
    if (bad) {
        fprintf(stderr, "prodcons: %llu blocks arrived corrupted\n", (unsigned long long)bad);
        exit(1);
    }
    q->yields += y;
    return NULL;
}

int main(int argc, char **argv)
{
    long pairs = bench_arg_long(argc, argv, 1, 1);
    long blocks = bench_arg_long(argc, argv, 2, 2000000);
    long min = bench_arg_long(argc, argv, 3, 16);
    long max = bench_arg_long(argc, argv, 4, 512);
    long ring = bench_arg_long(argc, argv, 5, 1024);
    if (pairs < 1 || blocks < pairs || min < 1 || max < min || ring < 2 || (ring & (ring - 1))) {
        fprintf(stderr, "usage: %s [pairs] [blocks] [min] [max] [ring (power of 2)]\n", argv[0]);
        return 2;
    }
    ring_t *q = aligned_alloc(64, sizeof(ring_t) * (size_t)pairs);
    pthread_t *th = calloc((size_t)pairs * 2, sizeof *th);
    if (!q || !th)
        bench_oom("malloc", 0);
    for (long i = 0; i < pairs; i++) {
        memset(&q[i], 0, sizeof q[i]);
        q[i].slot = calloc((size_t)ring, sizeof(void *));
        q[i].mask = (size_t)ring - 1;
        q[i].count = blocks / pairs;
        q[i].min = (size_t)min;
        q[i].max = (size_t)max;
        q[i].seed = 0xFEED + (uint64_t)i;
    }
    double t0 = bench_now();
    for (long i = 0; i < pairs; i++) {
        bench_pthread_create(&th[2 * i], consumer, &q[i]);
        bench_pthread_create(&th[2 * i + 1], producer, &q[i]);
    }
    for (long i = 0; i < 2 * pairs; i++)
        pthread_join(th[i], NULL);
    double t = bench_now() - t0;
    uint64_t yields = 0;
    double total = 0;
    for (long i = 0; i < pairs; i++) {
        yields += q[i].yields;
        total += (double)q[i].count;
        free(q[i].slot);
    }
    char extra[192];
    snprintf(extra, sizeof extra, "threads=%ld pairs=%ld min=%ld max=%ld ring=%ld yields=%llu",
             2 * pairs, pairs, min, max, ring, (unsigned long long)yields);
    bench_result("prodcons", extra, total, t);
    free(q);
    free(th);
    return 0;
}
