/* handoff.c: heaps that change hands while other threads allocate.
 *
 * Each round, a short thread (the producer) allocates BLOCKS patterned blocks
 * of mixed sizes and exits: its heap goes to hakmem's pool. Then two threads
 * start. The one created second (the adopter) takes a heap first, which is
 * the producer's pooled heap, and then allocates BLOCKS blocks of the same
 * sizes, from the same spans. The one created first (the freer), which
 * usually runs on the producer's recycled stack and TCB, waits until the heap
 * is adopted and then checks and frees the producer's blocks: frees into a
 * heap another thread now owns, made with the thread pointer of its previous
 * owner. They must go to the heap's remote list; were they taken for the
 * owner's frees, the two threads would race on the same free lists and hand
 * out blocks twice. The adopter checks every block it got at the end. A
 * background thread allocates and frees all the while.
 *
 * usage: handoff [rounds (default 2000)]
 */
#include "common.h"

#include <sched.h>

#define BLOCKS 2000

static unsigned char *blk[BLOCKS];
static size_t len[BLOCKS];
static atomic_int adopted, stop;

static uint64_t key(int i, size_t n) { return (uint64_t)i * 0x100000001b3ULL ^ n; }

static void *producer(void *arg)
{
    uint64_t rs = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < BLOCKS; i++) {
        len[i] = hk_range(&rs, 16, 1024);
        blk[i] = malloc(len[i]);
        CHECK(blk[i] != NULL);
        if (blk[i])
            hk_fill(blk[i], len[i], key(i, len[i]));
    }
    return NULL;
}

static void *freer(void *arg)
{
    (void)arg;
    while (!atomic_load(&adopted))
        sched_yield();
    for (int i = 0; i < BLOCKS; i++) {
        if (!blk[i])
            continue;
        long bad = hk_verify(blk[i], len[i], key(i, len[i]));
        CHECKF(bad < 0, "block %d (%zu B) damaged at byte %ld", i, len[i], bad);
        free(blk[i]);
    }
    return NULL;
}

static void *adopter(void *arg)
{
    (void)arg;
    void *warm = malloc(16);
    CHECK(warm != NULL);
    atomic_store(&adopted, 1);
    unsigned char **mine = malloc(BLOCKS * sizeof *mine);
    CHECK(mine != NULL);
    if (!mine)
        return NULL;
    for (int i = 0; i < BLOCKS; i++) {
        mine[i] = malloc(len[i]);
        CHECK(mine[i] != NULL);
        if (mine[i])
            hk_fill(mine[i], len[i], ~key(i, len[i]));
    }
    for (int i = 0; i < BLOCKS; i++) {
        if (!mine[i])
            continue;
        long bad = hk_verify(mine[i], len[i], ~key(i, len[i]));
        CHECKF(bad < 0, "block %p (%zu B) handed out twice? damaged at byte %ld",
               (void *)mine[i], len[i], bad);
        free(mine[i]);
    }
    free(mine);
    free(warm);
    return NULL;
}

static void *background(void *arg)
{
    (void)arg;
    unsigned char *q[256] = {0};
    size_t qn[256] = {0};
    uint64_t rs = 77;
    while (!atomic_load(&stop)) {
        int k = (int)(hk_rand(&rs) % 256);
        if (q[k]) {
            CHECK(hk_verify(q[k], qn[k], (uint64_t)k) < 0);
            free(q[k]);
            q[k] = NULL;
        } else {
            qn[k] = hk_range(&rs, 16, 1024);
            q[k] = malloc(qn[k]);
            CHECK(q[k] != NULL);
            if (q[k])
                hk_fill(q[k], qn[k], (uint64_t)k);
        }
    }
    for (int k = 0; k < 256; k++)
        free(q[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    hk_start("handoff");
    long rounds = argc > 1 ? atol(argv[1]) : 2000;
    pthread_t bg;
    CHECK(pthread_create(&bg, NULL, background, NULL) == 0);
    for (long r = 0; r < rounds && !hk_failed(); r++) {
        pthread_t p, f, a;
        CHECK(pthread_create(&p, NULL, producer, (void *)(uintptr_t)(r + 1)) == 0);
        CHECK(pthread_join(p, NULL) == 0);
        atomic_store(&adopted, 0);
        CHECK(pthread_create(&f, NULL, freer, NULL) == 0);
        CHECK(pthread_create(&a, NULL, adopter, NULL) == 0);
        CHECK(pthread_join(f, NULL) == 0);
        CHECK(pthread_join(a, NULL) == 0);
    }
    atomic_store(&stop, 1);
    CHECK(pthread_join(bg, NULL) == 0);
    printf("handoff: %ld rounds of %d blocks\n", rounds, BLOCKS);
    return hk_finish();
}
