/* fastpath: the smallest malloc/free loops, for instruction counting.
 *
 *   fastpath SIZE ITERATIONS [pair|batch|phases]
 *
 * pair (the default): runs ITERATIONS times
 *     { p = malloc(SIZE); sink = p; free(p); }
 * so one block is live at a time. An allocator that gives a page back (or
 * retires it) when its last block is freed does that on every free here.
 *
 * batch: runs ITERATIONS/100 rounds of
 *     { malloc 100 blocks of SIZE into an array, storing each to sink too;
 *       then free the 100 in allocation order }
 * so up to 100 blocks are live and a free is not the page's last one: the
 * steady state of a program that keeps some blocks of the size around.
 * ITERATIONS must be a multiple of 100; it still counts malloc/free pairs.
 *
 * phases: batch, timing the two halves of each round apart (the CPU's
 * time-stamp counter on x86-64, scaled to nanoseconds by the clock over the
 * whole loop; the clock itself elsewhere), and prints the nanoseconds per
 * malloc and per free: which side of a batch an allocator spends its time
 * on. Not for callgrind (the timing is in the counted loop).
 *
 * sink is volatile, so the compiler keeps every malloc and free. Before the
 * counted loop comes a warm-up (one pair, or in batch mode one full round),
 * so the first-call set-up is in every run alike. scripts/count-instructions
 * runs this under callgrind with two iteration counts and divides the
 * difference in instructions by the difference in iterations, which cancels
 * start-up and exit cost.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#define BATCH 100

static void *volatile sink;

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s SIZE ITERATIONS [pair|batch|phases]\n"
            "  batch: ITERATIONS/100 rounds of malloc 100 blocks, free them in order;\n"
            "         ITERATIONS must be a multiple of %d\n"
            "  phases: batch, printing the nanoseconds per malloc and per free\n",
            argv0, BATCH);
    return 2;
}

static void run_pairs(size_t size, long n)
{
    for (long i = 0; i < n; i++) {
        void *p = malloc(size);
        sink = p;
        free(p);
    }
}

static void run_batches(size_t size, long rounds)
{
    void *b[BATCH];
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < BATCH; i++) {
            b[i] = malloc(size);
            sink = b[i];
        }
        for (int i = 0; i < BATCH; i++)
            free(b[i]);
    }
}

static uint64_t ticks(void)
{
#if defined(__x86_64__)
    return __rdtsc();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* batch, with each half of every round timed on its own. */
static void run_phases(size_t size, long rounds)
{
    void *b[BATCH];
    uint64_t tm = 0, tf = 0, start = ticks();
    double ns0 = now_ns();
    for (long r = 0; r < rounds; r++) {
        uint64_t t0 = ticks();
        for (int i = 0; i < BATCH; i++) {
            b[i] = malloc(size);
            sink = b[i];
        }
        uint64_t t1 = ticks();
        for (int i = 0; i < BATCH; i++)
            free(b[i]);
        uint64_t t2 = ticks();
        tm += t1 - t0;
        tf += t2 - t1;
    }
    double ns = now_ns() - ns0;
    uint64_t all = ticks() - start;
    double scale = all ? ns / (double)all : 0; /* ns per tick */
    double ops = (double)rounds * BATCH;
    printf("PHASES size=%zu malloc_ns=%.3f free_ns=%.3f\n", size, (double)tm * scale / ops,
           (double)tf * scale / ops);
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4)
        return usage(argv[0]);
    char *end;
    size_t size = strtoul(argv[1], &end, 0);
    if (*argv[1] == '\0' || *end != '\0')
        return usage(argv[0]);
    long n = strtol(argv[2], &end, 0);
    if (*argv[2] == '\0' || *end != '\0' || n < 0)
        return usage(argv[0]);
    int batch = 0; /* 1 batch, 2 phases */
    if (argc == 4) {
        if (strcmp(argv[3], "batch") == 0)
            batch = 1;
        else if (strcmp(argv[3], "phases") == 0)
            batch = 2;
        else if (strcmp(argv[3], "pair") != 0)
            return usage(argv[0]);
    }
    if (batch && n % BATCH != 0)
        return usage(argv[0]);

    if (batch == 2) {
        run_batches(size, 1000); /* warm-up */
        run_phases(size, n / BATCH);
    } else if (batch) {
        run_batches(size, 1); /* warm-up: one full round */
        run_batches(size, n / BATCH);
    } else {
        run_pairs(size, 1); /* warm-up: one pair */
        run_pairs(size, n);
    }
    printf("RESULT name=fastpath size=%zu iterations=%ld mode=%s\n", size, n,
           batch == 2 ? "phases" : batch ? "batch" : "pair");
    return 0;
}
