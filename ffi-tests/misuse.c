/* misuse.c: commits one heap misuse, named by argv[1], which hakmem must
 * detect: it must print one diagnostic line to stderr and abort().
 *
 * Before the misuse the program prints the pointer it is about to pass, with
 * printf("%p\n"), so the harness (tests/misuse.rs) can look for exactly that
 * text in the diagnostic. If the misuse goes unnoticed the program prints
 * "misuse not detected" and exits 0 (which the harness reports as a failure).
 *
 * The cases write-after-free, overflow-large and overflow-superslab are for
 * secure mode (HAKMEM_SECURE=1): the first must be reported like the others,
 * the two overflows must fault on a guard page (SIGSEGV).
 *
 * usage: misuse CASE   (misuse --list prints the cases)
 */
#include "common.h"

/* Keep the compiler from reasoning about the misuse (-Wfree-nonheap-object,
 * -Wuse-after-free) or optimising it away. */
static void *volatile launder_slot;
static void *launder(void *p)
{
    launder_slot = p;
    return launder_slot;
}

static void announce(void *p)
{
    printf("%p\n", p);
    fflush(stdout);
}

static void *alloc_filled(size_t n)
{
    unsigned char *p = malloc(n);
    if (!p) {
        fprintf(stderr, "misuse: setup malloc(%zu) failed\n", n);
        exit(2);
    }
    memset(p, 0x5c, n);
    return p;
}

static void double_free(size_t n)
{
    void *p = alloc_filled(n);
    void *again = launder(p);
    announce(p);
    free(p);
    free(again);
}

/* A double free of a block that has left the freeing thread's hot list:
 * thousands of frees of its size after it push it back to its span (which
 * stays in use: its neighbour is kept). */
static void double_free_flushed(void)
{
    enum { N = 8192 };
    static void *ps[N];
    for (int i = 0; i < N; i++)
        ps[i] = alloc_filled(64);
    void *again = launder(ps[0]);
    announce(ps[0]);
    for (int i = 0; i < N; i++)
        if (i != 1)
            free(ps[i]);
    free(again);
}

/* A double free of a block another thread freed first (on its owner's
 * remote list, or collected into its span by then). */
static void *free_in_thread(void *p)
{
    free(p);
    return NULL;
}

static void double_free_remote(void)
{
    void *p = alloc_filled(64);
    void *again = launder(p);
    announce(p);
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, p) != 0 || pthread_join(t, NULL) != 0) {
        fprintf(stderr, "misuse: setup pthread_create failed\n");
        exit(2);
    }
    free(again);
}

/* A double free by a thread that adopted the heap of the thread that freed
 * the block first (an exited thread's heap goes to the next new thread). */
static void *alloc_free_exit(void *arg)
{
    void **slot = arg;
    slot[0] = alloc_filled(64);
    slot[1] = alloc_filled(64); /* keeps the span in use */
    free(launder(slot[0]));
    return NULL;
}

/* The new thread's first malloc (of another size, so it cannot hand the
 * freed block out again) adopts the pooled heap; then the second free. */
static void *adopt_and_free(void *p)
{
    launder(alloc_filled(256));
    free(p);
    return NULL;
}

static void double_free_adopted(void)
{
    static void *slot[2];
    pthread_t t;
    if (pthread_create(&t, NULL, alloc_free_exit, slot) != 0 || pthread_join(t, NULL) != 0) {
        fprintf(stderr, "misuse: setup pthread_create failed\n");
        exit(2);
    }
    announce(slot[0]);
    if (pthread_create(&t, NULL, adopt_and_free, slot[0]) != 0 || pthread_join(t, NULL) != 0) {
        fprintf(stderr, "misuse: setup pthread_create failed\n");
        exit(2);
    }
}

static void interior_free(size_t n, size_t off)
{
    unsigned char *p = alloc_filled(n);
    void *q = launder(p + off);
    announce(q);
    free(q);
}

static void stack_free(void)
{
    char buf[64];
    memset(buf, 1, sizeof buf);
    void *q = launder(buf + 16);
    announce(q);
    free(q);
}

static void wild_free(void)
{
    void *q = launder((void *)(uintptr_t)0x12345670);
    announce(q);
    free(q);
}

static void realloc_after_free(void)
{
    void *p = alloc_filled(64);
    void *again = launder(p);
    announce(p);
    free(p);
    void *r = realloc(again, 128);
    launder(r);
}

static void realloc_interior(void)
{
    unsigned char *p = alloc_filled(256);
    void *q = launder(p + 16);
    announce(q);
    void *r = realloc(q, 512);
    launder(r);
}

/* Secure mode (HAKMEM_SECURE=1) cases. */

/* Write over a freed block's first 16 bytes (where a free list keeps its
 * link), then allocate that size until the damaged block comes up: secure
 * mode must report it rather than follow the link. */
static void write_after_free(void)
{
    unsigned char *p = alloc_filled(64);
    void *q = launder(p);
    announce(p);
    free(p);
    memset(q, 0x41, 16);
    for (int i = 0; i < 100000; i++)
        launder(malloc(64));
}

/* One byte past a large block's usable size: the guard page. */
static void overflow_large(void)
{
    unsigned char *p = alloc_filled(1 << 20);
    size_t n = malloc_usable_size(p);
    announce(p + n);
    ((volatile unsigned char *)launder(p))[n] = 1;
}

/* The page before the 2 MiB boundary after a block in the last 64 KiB of its
 * (2 MiB-aligned) SuperSlab: the SuperSlab's guard page, past its last block. */
static void overflow_superslab(void)
{
    const uintptr_t ss = (uintptr_t)2 << 20;
    for (int i = 0; i < 200000; i++) {
        unsigned char *p = malloc(16);
        uintptr_t a = (uintptr_t)p;
        if (p && (a & (ss - 1)) >= ss - 65536) {
            unsigned char *guard = (unsigned char *)((a | (ss - 1)) + 1 - 4096);
            announce(guard);
            *(volatile unsigned char *)launder(guard) = 1;
            return;
        }
    }
    fprintf(stderr, "misuse: no 16-byte block in the last slab of a SuperSlab\n");
    exit(2);
}

static void double_free_small(void) { double_free(64); }
static void double_free_mid(void) { double_free(20 * 1024); }
static void double_free_large(void) { double_free(4 << 20); }
static void interior_free_small(void) { interior_free(256, 16); }
static void interior_free_large(void) { interior_free(4 << 20, 65536 + 16); }
/* A class that is not a power of two (48 B, 16 bytes in: 16-byte aligned, so
   only the divisibility test tells it), and a mid block. */
static void interior_free_odd(void) { interior_free(48, 16); }
static void interior_free_mid(void) { interior_free(20 * 1024, 4096); }

static const struct {
    const char *name;
    void (*run)(void);
} cases[] = {
    {"double-free-small", double_free_small},
    {"double-free-mid", double_free_mid},
    {"double-free-large", double_free_large},
    {"double-free-flushed", double_free_flushed},
    {"double-free-remote", double_free_remote},
    {"double-free-adopted", double_free_adopted},
    {"interior-free", interior_free_small},
    {"interior-free-large", interior_free_large},
    {"interior-free-odd", interior_free_odd},
    {"interior-free-mid", interior_free_mid},
    {"stack-free", stack_free},
    {"wild-free", wild_free},
    {"realloc-after-free", realloc_after_free},
    {"realloc-interior", realloc_interior},
    {"write-after-free", write_after_free},
    {"overflow-large", overflow_large},
    {"overflow-superslab", overflow_superslab},
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: misuse CASE|--list\n");
        return 2;
    }
    const char *c = argv[1];
    if (strcmp(c, "--list") == 0) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(c, cases[i].name) != 0)
            continue;
        /* (also sets up stdout's buffer before the heap is damaged) */
        hk_start("misuse");
        printf("misuse: %s\n", c);
        fflush(stdout);
        cases[i].run();
        printf("misuse not detected\n");
        return 0;
    }
    fprintf(stderr, "misuse: unknown case %s\n", c);
    return 2;
}
