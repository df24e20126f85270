/* misuse.c: commits one heap misuse, named by argv[1], which hakmem must
 * detect: it must print one diagnostic line to stderr and abort().
 *
 * Before the misuse the program prints the pointer it is about to pass, with
 * printf("%p\n"), so the harness (tests/misuse.rs) can look for exactly that
 * text in the diagnostic. If the misuse goes unnoticed the program prints
 * "misuse not detected" and exits 0 (which the harness reports as a failure).
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

static const char *cases[] = {
    "double-free-small", "double-free-mid", "double-free-large", "interior-free",
    "interior-free-large", "stack-free", "wild-free", "realloc-after-free",
    "realloc-interior",
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
            printf("%s\n", cases[i]);
        return 0;
    }
    /* (also sets up stdout's buffer before the heap is damaged) */
    hk_start("misuse");
    printf("misuse: %s\n", c);
    fflush(stdout);
    if (strcmp(c, "double-free-small") == 0)
        double_free(64);
    else if (strcmp(c, "double-free-mid") == 0)
        double_free(20 * 1024);
    else if (strcmp(c, "double-free-large") == 0)
        double_free(4 << 20);
    else if (strcmp(c, "interior-free") == 0)
        interior_free(256, 16);
    else if (strcmp(c, "interior-free-large") == 0)
        interior_free(4 << 20, 65536 + 16);
    else if (strcmp(c, "stack-free") == 0)
        stack_free();
    else if (strcmp(c, "wild-free") == 0)
        wild_free();
    else if (strcmp(c, "realloc-after-free") == 0)
        realloc_after_free();
    else if (strcmp(c, "realloc-interior") == 0)
        realloc_interior();
    else {
        fprintf(stderr, "misuse: unknown case %s\n", c);
        return 2;
    }
    printf("misuse not detected\n");
    return 0;
}
