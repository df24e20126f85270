/* large_threads.c: threads that map, grow, shrink, move and free large
 * blocks at once.
 *
 * Each of THREADS threads keeps SLOTS large blocks of its own (300 KiB -
 * 8 MiB; plain, zeroed, or aligned up to 2 MiB) and, step by step, replaces
 * one, frees one, or reallocs one up or down (in place, by moving its
 * pages, or by giving back its tail). The first and last 64 bytes of every
 * block carry a pattern, checked before each realloc and free, and every
 * block's malloc_usable_size() is checked at each step. No block is shared,
 * so any failure comes from state the threads share inside the allocator:
 * its large-block cache and its registry. (A realloc that unmapped or moved
 * a range and only then cleared the range's registry entries, once another
 * thread's new mapping had been registered there, made that thread's live
 * block "not allocated by hakmem" within a second or so.)
 *
 * usage: large_threads [steps per thread (default 3000)] [threads (4)]
 */
#include "common.h"

#define SLOTS 16
#define EDGE 64

struct block {
    unsigned char *p;
    size_t n;
    uint64_t key;
};

static long steps = 3000;

static void mark(struct block *b)
{
    hk_fill(b->p, EDGE, b->key);
    hk_fill(b->p + b->n - EDGE, EDGE, b->key + 1);
}

static void check(const struct block *b, const char *when)
{
    CHECKF(malloc_usable_size(b->p) >= b->n, "%s: %p holds %zu, usable %zu", when,
           (void *)b->p, b->n, malloc_usable_size(b->p));
    CHECKF(hk_verify(b->p, EDGE, b->key) < 0, "%s: head of %p (%zu bytes) damaged", when,
           (void *)b->p, b->n);
    CHECKF(hk_verify(b->p + b->n - EDGE, EDGE, b->key + 1) < 0,
           "%s: tail of %p (%zu bytes) damaged", when, (void *)b->p, b->n);
}

static size_t large_size(uint64_t *rs) { return hk_range(rs, 300 << 10, 8 << 20); }

static void *worker(void *arg)
{
    uint64_t rs = (uint64_t)(uintptr_t)arg;
    struct block b[SLOTS] = {0};
    for (long i = 0; i < steps; i++) {
        struct block *s = &b[hk_rand(&rs) % SLOTS];
        int op = (int)(hk_rand(&rs) % 4);
        if (s->p)
            check(s, "step");
        if (s->p && op == 0) {
            /* realloc: up (in place or moved) or down (tail given back) */
            size_t n = hk_rand(&rs) % 2 ? large_size(&rs) : hk_range(&rs, 300 << 10, s->n);
            unsigned char *q = realloc(s->p, n);
            CHECK(q != NULL);
            if (!q)
                continue;
            size_t keep = n < s->n ? n : s->n;
            s->p = q;
            if (keep == s->n) /* the old tail pattern moved with the block */
                CHECK(hk_verify(q + s->n - EDGE, EDGE, s->key + 1) < 0);
            CHECK(hk_verify(q, EDGE, s->key) < 0);
            s->n = n;
            s->key = hk_rand(&rs);
            mark(s);
        } else if (s->p && op == 1) {
            free(s->p);
            s->p = NULL;
        } else {
            free(s->p);
            size_t n = large_size(&rs);
            int how = (int)(hk_rand(&rs) % 3);
            void *p = NULL;
            if (how == 0) {
                size_t align = (size_t)1 << hk_range(&rs, 4, 21);
                CHECK(posix_memalign(&p, align, n) == 0);
                CHECK(p == NULL || (uintptr_t)p % align == 0);
            } else if (how == 1) {
                p = calloc(1, n);
                /* (its ends: recycled memory must come back zeroed too) */
                CHECK(p == NULL || hk_first_nonzero(p, 4096) < 0);
                CHECK(p == NULL || hk_first_nonzero((char *)p + n - 4096, 4096) < 0);
            } else {
                p = malloc(n);
            }
            CHECK(p != NULL);
            s->p = p;
            s->n = n;
            s->key = hk_rand(&rs);
            if (p)
                mark(s);
        }
    }
    for (int k = 0; k < SLOTS; k++)
        if (b[k].p) {
            check(&b[k], "end");
            free(b[k].p);
        }
    return NULL;
}

int main(int argc, char **argv)
{
    hk_start("large_threads");
    if (argc > 1)
        steps = atol(argv[1]);
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    if (threads < 1 || threads > 64)
        threads = 4;
    pthread_t t[64];
    for (int i = 0; i < threads; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(0x1a46e + 77 * i)) == 0);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return hk_finish();
}
