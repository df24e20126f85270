/* oom.c: behaviour when the address space runs out.
 *
 * Caps RLIMIT_AS at the current VmSize + 256 MiB, then allocates 1 MiB blocks
 * until malloc returns NULL, then 64 KiB blocks, then 100-byte blocks. Every
 * NULL must come with errno == ENOMEM (and no crash or abort). calloc,
 * realloc and posix_memalign must fail cleanly at that point too. Then
 * everything is freed and the program must be able to allocate again. The
 * same is repeated from two threads at once.
 *
 * Blocks are chained through their first word, so the bookkeeping needs no
 * memory of its own.
 */
#include "common.h"

#include <sys/resource.h>

#define MiB ((size_t)1 << 20)
#define HEADROOM (256 * MiB)
#define MAX_ITER 20000000L /* no allocator should hand out more than this */

struct chain {
    void *head;
    long count[3];
};

static const size_t oom_sizes[3] = {1 << 20, 64 << 10, 100};

/* Allocate blocks of each size, largest first, until malloc returns NULL. */
static void fill_until_null(struct chain *c, const char *who)
{
    for (int s = 0; s < 3; s++) {
        size_t n = oom_sizes[s];
        long i;
        for (i = 0; i < MAX_ITER; i++) {
            errno = 0;
            void **p = malloc(n);
            if (!p) {
                CHECKF(errno == ENOMEM, "%s: malloc(%zu) returned NULL with errno %d, not ENOMEM",
                       who, n, errno);
                break;
            }
            *p = c->head;
            c->head = p;
            c->count[s]++;
            if (n > 4096)
                ((char *)p)[n - 1] = 1; /* touch the end too */
        }
        CHECKF(i < MAX_ITER, "%s: malloc(%zu) never returned NULL under RLIMIT_AS", who, n);
    }
}

static long free_chain(struct chain *c)
{
    long n = 0;
    while (c->head) {
        void **p = c->head;
        c->head = *p;
        free(p);
        n++;
    }
    return n;
}

/* At the limit, the other entry points must fail cleanly as well. */
static void check_other_entry_points(const char *who)
{
    errno = 0;
    void *p = calloc(1, 64 * MiB);
    CHECKF(p == NULL && errno == ENOMEM, "%s: calloc(1, 64 MiB) at the limit: %p errno %d", who,
           p, errno);
    free(p);
    void *out = (void *)0x4242;
    int rc = posix_memalign(&out, 4096, 64 * MiB);
    CHECKF(rc == ENOMEM, "%s: posix_memalign at the limit returned %d", who, rc);
    CHECKF(out == (void *)0x4242 || rc == 0, "%s: failed posix_memalign modified *memptr", who);
    if (rc == 0)
        free(out);
    errno = 0;
    p = aligned_alloc(1 << 20, 64 * MiB);
    CHECKF(p == NULL && errno == ENOMEM, "%s: aligned_alloc at the limit: %p errno %d", who, p,
           errno);
    free(p);
}

/* After freeing everything, allocation must work again. */
static void check_recovers(const char *who)
{
    struct chain c = {0};
    for (int i = 0; i < 64; i++) { /* 64 MiB of 1 MiB blocks */
        void **p = malloc(MiB);
        CHECKF(p != NULL, "%s: malloc(1 MiB) #%d failed after freeing everything", who, i);
        if (!p)
            break;
        memset(p, 1, 4096);
        *p = c.head;
        c.head = p;
    }
    for (int i = 0; i < 1000; i++) {
        void **p = malloc(i % 2 ? 100 : 64 << 10);
        CHECKF(p != NULL, "%s: small/mid malloc #%d failed after freeing everything", who, i);
        if (!p)
            break;
        *p = c.head;
        c.head = p;
    }
    void *big = malloc(32 * MiB);
    CHECKF(big != NULL, "%s: malloc(32 MiB) failed after freeing everything", who);
    free(big);
    free_chain(&c);
}

static pthread_barrier_t barrier;
/* check_recovers() needs up to ~130 MiB: the threads take turns */
static pthread_mutex_t recover_mu = PTHREAD_MUTEX_INITIALIZER;

static void *oom_thread(void *arg)
{
    int me = (int)(intptr_t)arg;
    char who[32];
    snprintf(who, sizeof who, "thread %d", me);
    struct chain c = {0};
    pthread_barrier_wait(&barrier);
    fill_until_null(&c, who);
    pthread_barrier_wait(&barrier); /* both at the limit */
    if (me == 0)
        check_other_entry_points(who);
    pthread_barrier_wait(&barrier);
    printf("oom: %s got %ld x 1 MiB, %ld x 64 KiB, %ld x 100 B\n", who, c.count[0], c.count[1],
           c.count[2]);
    free_chain(&c);
    pthread_barrier_wait(&barrier); /* both freed */
    pthread_mutex_lock(&recover_mu);
    check_recovers(who);
    pthread_mutex_unlock(&recover_mu);
    return NULL;
}

int main(void)
{
    hk_start("oom");
    /* let the allocator initialise before measuring */
    free(malloc(100));
    free(malloc(100000));
    free(malloc(3 * MiB));

    /* start the threads now (small stacks), so that their creation does not
     * depend on the memory left at the limit */
    pthread_barrier_init(&barrier, NULL, 3);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], &attr, oom_thread, (void *)(intptr_t)i) == 0);

    long vm_kib = hk_status_kib("VmSize");
    CHECK(vm_kib > 0);
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)vm_kib * 1024 + HEADROOM;
    CHECKF(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit: %s", strerror(errno));

    double t0 = hk_now();
    struct chain c = {0};
    fill_until_null(&c, "main");
    check_other_entry_points("main");
    /* realloc to a size that cannot fit: NULL, ENOMEM, block untouched */
    void **head = c.head;
    if (head) {
        void *next = *head;
        errno = 0;
        void *r = realloc(head, 128 * MiB);
        CHECKF(r == NULL && errno == ENOMEM, "realloc(p, 128 MiB) at the limit: %p errno %d", r,
               errno);
        if (r) {
            c.head = r;
        } else {
            CHECK(*head == next);
        }
    }
    printf("oom: main got %ld x 1 MiB, %ld x 64 KiB, %ld x 100 B\n", c.count[0], c.count[1],
           c.count[2]);
    CHECKF(c.count[0] >= 128, "only %ld MiB allocatable under a %zu MiB headroom", c.count[0],
           HEADROOM >> 20);
    free_chain(&c);
    check_recovers("main");

    /* the same from two threads at once */
    pthread_barrier_wait(&barrier); /* go */
    pthread_barrier_wait(&barrier); /* at the limit */
    pthread_barrier_wait(&barrier); /* entry points checked */
    pthread_barrier_wait(&barrier); /* freed */
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    check_recovers("main, after the threads");
    printf("oom: %.2f s\n", hk_now() - t0);
    return hk_finish();
}
