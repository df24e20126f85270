/* handoff.c: heaps that change hands while other threads keep allocating.
 *
 * Each round, one short thread allocates BLOCKS patterned blocks of mixed
 * sizes and exits (its heap goes to hakmem's pool); then two threads start at
 * once: the first usually on the exited thread's recycled stack and TCB, the
 * second made to adopt its pooled heap, so the first frees remotely into a
 * heap another thread owns, with the TCB of the heap's previous owner. Each replaces half of
 * the blocks (check the pattern, free, malloc the same size, fill) and at the
 * end checks and frees its replacements. A background thread allocates and frees all the while. Every block's
 * pattern is checked before it is freed: a heap used by two threads at once
 * (an owner test passed by the wrong thread) shows up as a damaged block or a
 * crash.
 *
 * usage: handoff [rounds (default 2000)]
 */
#include "common.h"

#define BLOCKS 2000

static unsigned char *blk[BLOCKS];
static size_t len[BLOCKS];
static atomic_int stop;

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

struct half {
    int lo, hi;
    int second; /* the thread created second takes its heap first */
};

static atomic_int taken;

static void *consumer(void *arg)
{
    struct half *h = arg;
    /* Take a heap first: the thread created second before the other, so it
     * adopts the exited thread's pooled heap while the first, which most
     * likely runs on the exited thread's stack and TCB, does not. Then
     * replace each block of the half by one of the same size: frees and
     * mallocs on the same spans, by both threads at once. */
    if (!h->second)
        while (!atomic_load(&taken))
            sched_yield();
    void *warm = malloc(16);
    CHECK(warm != NULL);
    if (h->second)
        atomic_store(&taken, 1);
    int n = h->hi - h->lo;
    unsigned char **mine = malloc((size_t)n * sizeof *mine);
    CHECK(mine != NULL);
    if (!mine)
        return NULL;
    for (int i = h->lo; i < h->hi; i++) {
        unsigned char *p = blk[i];
        mine[i - h->lo] = NULL;
        if (!p)
            continue;
        long bad = hk_verify(p, len[i], key(i, len[i]));
        CHECKF(bad < 0, "block %d (%zu B) damaged at byte %ld", i, len[i], bad);
        free(p);
        unsigned char *q = malloc(len[i]);
        CHECK(q != NULL);
        if (q)
            hk_fill(q, len[i], ~key(i, len[i]));
        mine[i - h->lo] = q;
    }
    for (int i = h->lo; i < h->hi; i++) {
        unsigned char *q = mine[i - h->lo];
        if (!q)
            continue;
        long bad = hk_verify(q, len[i], ~key(i, len[i]));
        CHECKF(bad < 0, "replacement of block %d (%zu B) damaged at byte %ld", i, len[i], bad);
        free(q);
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
        pthread_t p, c1, c2;
        CHECK(pthread_create(&p, NULL, producer, (void *)(uintptr_t)(r + 1)) == 0);
        CHECK(pthread_join(p, NULL) == 0);
        struct half a = {0, BLOCKS / 2, 0}, b = {BLOCKS / 2, BLOCKS, 1};
        atomic_store(&taken, 0);
        CHECK(pthread_create(&c1, NULL, consumer, &a) == 0);
        CHECK(pthread_create(&c2, NULL, consumer, &b) == 0);
        CHECK(pthread_join(c1, NULL) == 0);
        CHECK(pthread_join(c2, NULL) == 0);
    }
    atomic_store(&stop, 1);
    CHECK(pthread_join(bg, NULL) == 0);
    printf("handoff: %ld rounds of %d blocks\n", rounds, BLOCKS);
    return hk_finish();
}
