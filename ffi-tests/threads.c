/* threads.c: multi-threaded stress with cross-thread frees.
 *
 * NTHREADS threads allocate blocks of random sizes (mostly 8 B..64 KiB, a few
 * up to 1 MiB), fill each with a pattern derived from (address, size, thread),
 * keep some, free some locally, grow some with realloc, and hand a share to the
 * other threads through mutex-protected mailboxes. Whoever frees a block first
 * checks every byte of its pattern.
 *
 * usage: threads [seconds (default 2)] [threads (default 4)]
 */
#include "common.h"

#define MAXT 16
#define LOCAL 512    /* blocks each thread keeps in its own table */
#define MAILBOX 1024 /* capacity of each thread's inbox */

struct item {
    unsigned char *p;
    size_t n;
    int owner; /* thread that wrote the pattern */
};

struct mailbox {
    pthread_mutex_t mu;
    struct item q[MAILBOX];
    int head, count;
};

static struct mailbox boxes[MAXT];
static int nthreads = 4;
static double deadline;
static pthread_barrier_t barrier;
static atomic_long total_allocs, total_remote_frees, total_bytes_checked;

static uint64_t key_of(const unsigned char *p, size_t n, int owner)
{
    return (uint64_t)(uintptr_t)p ^ ((uint64_t)n << 20) ^ ((uint64_t)owner << 56);
}

static size_t random_size(uint64_t *rs)
{
    uint64_t r = hk_rand(rs) % 1000;
    if (r < 600)
        return hk_range(rs, 8, 256);
    if (r < 900)
        return hk_range(rs, 257, 4096);
    if (r < 995)
        return hk_range(rs, 4097, 64 * 1024);
    return hk_range(rs, 64 * 1024 + 1, 1024 * 1024);
}

static void check_and_free(struct item it, int me)
{
    long off = hk_verify(it.p, it.n, key_of(it.p, it.n, it.owner));
    CHECKF(off < 0, "thread %d: block %p (%zu bytes, written by thread %d) corrupted at offset %ld",
           me, (void *)it.p, it.n, it.owner, off);
    atomic_fetch_add_explicit(&total_bytes_checked, (long)it.n, memory_order_relaxed);
    if (it.owner != me)
        atomic_fetch_add_explicit(&total_remote_frees, 1, memory_order_relaxed);
    free(it.p);
}

/* Returns 0 when the target's mailbox is full. */
static int send_to(int target, struct item it)
{
    struct mailbox *b = &boxes[target];
    int ok = 0;
    pthread_mutex_lock(&b->mu);
    if (b->count < MAILBOX) {
        b->q[(b->head + b->count) % MAILBOX] = it;
        b->count++;
        ok = 1;
    }
    pthread_mutex_unlock(&b->mu);
    return ok;
}

static void drain(int me)
{
    struct item batch[64];
    for (;;) {
        int n = 0;
        struct mailbox *b = &boxes[me];
        pthread_mutex_lock(&b->mu);
        while (b->count > 0 && n < 64) {
            batch[n++] = b->q[b->head];
            b->head = (b->head + 1) % MAILBOX;
            b->count--;
        }
        pthread_mutex_unlock(&b->mu);
        if (n == 0)
            return;
        for (int i = 0; i < n; i++)
            check_and_free(batch[i], me);
    }
}

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t rs = hk_mix64((uint64_t)me + 1) | 1;
    struct item local[LOCAL];
    memset(local, 0, sizeof local);
    long ops = 0;

    pthread_barrier_wait(&barrier);
    while ((ops & 255) != 0 || hk_now() < deadline) {
        ops++;
        int slot = (int)(hk_rand(&rs) % LOCAL);
        struct item *it = &local[slot];
        if (it->p) {
            uint64_t r = hk_rand(&rs) % 10;
            if (r < 4) {
                /* hand to another thread; it verifies and frees */
                int target = (int)((me + 1 + hk_rand(&rs) % (nthreads - 1)) % nthreads);
                if (nthreads == 1 || !send_to(target, *it))
                    check_and_free(*it, me);
                it->p = NULL;
            } else if (r < 5) {
                /* realloc: the prefix must survive, then re-pattern */
                size_t nn = random_size(&rs);
                long off = hk_verify(it->p, it->n, key_of(it->p, it->n, it->owner));
                CHECKF(off < 0, "thread %d: block %p corrupted at offset %ld before realloc", me,
                       (void *)it->p, off);
                /* contents before the move, to compare after */
                size_t keep = it->n < nn ? it->n : nn;
                uint64_t oldkey = key_of(it->p, it->n, it->owner);
                unsigned char *q = realloc(it->p, nn);
                CHECKF(q != NULL, "realloc(%zu) failed", nn);
                if (!q)
                    continue;
                off = hk_verify(q, keep, oldkey);
                CHECKF(off < 0, "thread %d: realloc %zu -> %zu lost contents at offset %ld", me,
                       it->n, nn, off);
                it->p = q;
                it->n = nn;
                it->owner = me;
                hk_fill(q, nn, key_of(q, nn, me));
            } else {
                check_and_free(*it, me);
                it->p = NULL;
            }
        } else {
            size_t n = random_size(&rs);
            int zeroed = hk_rand(&rs) % 8 == 0;
            unsigned char *p = zeroed ? calloc(1, n) : malloc(n);
            CHECKF(p != NULL, "malloc(%zu) failed", n);
            if (!p)
                continue;
            if (zeroed) {
                long nz = hk_first_nonzero(p, n);
                CHECKF(nz < 0, "thread %d: calloc(1, %zu) = %p: byte %ld not zero", me, n,
                       (void *)p, nz);
            }
            CHECKF((uintptr_t)p % 16 == 0 || n < 16, "block %p misaligned", (void *)p);
            CHECKF(malloc_usable_size(p) >= n, "usable size %zu < %zu", malloc_usable_size(p), n);
            hk_fill(p, n, key_of(p, n, me));
            *it = (struct item){p, n, me};
            atomic_fetch_add_explicit(&total_allocs, 1, memory_order_relaxed);
        }
        if ((ops & 15) == 0)
            drain(me);
    }

    /* shut down: free own blocks, wait until nobody sends any more, drain */
    for (int i = 0; i < LOCAL; i++)
        if (local[i].p)
            check_and_free(local[i], me);
    pthread_barrier_wait(&barrier);
    drain(me);
    return NULL;
}

int main(int argc, char **argv)
{
    hk_start("threads");
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    nthreads = argc > 2 ? atoi(argv[2]) : 4;
    if (nthreads < 1 || nthreads > MAXT) {
        fprintf(stderr, "threads: 1..%d threads\n", MAXT);
        return 2;
    }
    for (int i = 0; i < nthreads; i++)
        pthread_mutex_init(&boxes[i].mu, NULL);
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    deadline = hk_now() + secs;
    pthread_t t[MAXT];
    for (int i = 0; i < nthreads; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < nthreads; i++)
        CHECKF(boxes[i].count == 0, "mailbox %d still holds %d blocks", i, boxes[i].count);
    printf("threads: %d threads, %ld allocations, %ld cross-thread frees, %ld MiB verified\n",
           nthreads, atomic_load(&total_allocs), atomic_load(&total_remote_frees),
           atomic_load(&total_bytes_checked) >> 20);
    CHECKF(nthreads == 1 || atomic_load(&total_remote_frees) > 1000,
           "only %ld cross-thread frees happened", atomic_load(&total_remote_frees));
    return hk_finish();
}
