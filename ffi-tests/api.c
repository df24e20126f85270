/* api.c: every exported allocation entry point and its edge cases.
 *
 * Exits 0 when every check passes; prints "FAIL file:line: expr" per failed
 * check and exits 1 otherwise. Runs single-threaded in well under a second.
 */
#include "common.h"

#include <stddef.h>
#include <sys/stat.h>

/* A failed realloc leaves the old block valid; the checks below deliberately
 * use it afterwards, which GCC's -Wuse-after-free cannot tell apart. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* glibc's internal aliases; hakmem exports them with the same signatures. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

/* Sizes fed to the allocator through a volatile so that the compiler neither
 * warns about nor folds away obviously-failing requests. */
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_ptrdiff_max = PTRDIFF_MAX;

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

struct blk {
    unsigned char *p;
    size_t n;
};

static int cmp_blk(const void *a, const void *b)
{
    return cmp_ptr(&((const struct blk *)a)->p, &((const struct blk *)b)->p);
}

/* Live blocks must not overlap (by their requested sizes). */
static void check_disjoint(struct blk *b, size_t n)
{
    qsort(b, n, sizeof *b, cmp_blk);
    for (size_t i = 1; i < n; i++)
        CHECKF(b[i - 1].p + b[i - 1].n <= b[i].p, "blocks %p+%zu and %p overlap",
               (void *)b[i - 1].p, b[i - 1].n, (void *)b[i].p);
}

/* A list of sizes covering 1..300000 densely at the bottom, sparser above. */
static size_t next_size(size_t s)
{
    if (s < 1024)
        return s + 1;
    if (s < 16384)
        return s + 7;
    return s + s / 97 + 1;
}

static void test_alignment_and_disjointness(void)
{
    enum { MAXB = 8192 };
    static struct blk live[MAXB];
    size_t nlive = 0;
    for (size_t s = 1; s <= 300000; s = next_size(s)) {
        unsigned char *p = malloc(s);
        CHECKF(p != NULL, "malloc(%zu)", s);
        if (!p)
            continue;
        if (s >= 16)
            CHECKF((uintptr_t)p % 16 == 0, "malloc(%zu) = %p not 16-aligned", s, (void *)p);
        else if (s >= 8)
            CHECKF((uintptr_t)p % 8 == 0, "malloc(%zu) = %p not 8-aligned", s, (void *)p);
        p[0] = 1;
        p[s - 1] = 2;
        if (nlive < MAXB)
            live[nlive++] = (struct blk){p, s};
        else
            free(p);
    }
    size_t big[] = {1 * MiB, 2 * MiB - 1, 2 * MiB, 3 * MiB + 5, 5 * MiB, 9 * MiB + 4095};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        unsigned char *p = malloc(big[i]);
        CHECKF(p != NULL, "malloc(%zu)", big[i]);
        if (!p)
            continue;
        CHECKF((uintptr_t)p % 16 == 0, "malloc(%zu) = %p not 16-aligned", big[i], (void *)p);
        memset(p, 0x5a, big[i]);
        live[nlive++] = (struct blk){p, big[i]};
    }
    check_disjoint(live, nlive);
    for (size_t i = 0; i < nlive; i++)
        free(live[i].p);
}

/* Many blocks filled with distinct patterns, all checked after all are written:
 * catches overlapping blocks and allocator metadata written into user data. */
static void test_integrity(void)
{
    enum { N = 3000 };
    static struct blk b[N];
    uint64_t rs = 0x1234567;
    for (int i = 0; i < N; i++) {
        size_t n = (i % 50 == 0) ? hk_range(&rs, 16 * KiB, 400 * KiB) : hk_range(&rs, 1, 2048);
        b[i].n = n;
        b[i].p = malloc(n);
        CHECK(b[i].p != NULL);
        if (b[i].p)
            hk_fill(b[i].p, n, (uint64_t)i);
        /* free every third earlier block to interleave reuse */
        if (i % 3 == 2 && b[i - 1].p) {
            CHECK(hk_verify(b[i - 1].p, b[i - 1].n, (uint64_t)(i - 1)) < 0);
            free(b[i - 1].p);
            b[i - 1].p = NULL;
        }
    }
    for (int i = 0; i < N; i++) {
        if (!b[i].p)
            continue;
        long off = hk_verify(b[i].p, b[i].n, (uint64_t)i);
        CHECKF(off < 0, "block %d (%p, %zu bytes) corrupted at offset %ld", i, (void *)b[i].p,
               b[i].n, off);
        free(b[i].p);
    }
    free(NULL); /* must be a no-op */
}

static void test_malloc_zero(void)
{
    enum { N = 200 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(0);
        CHECKF(p[i] != NULL, "malloc(0) #%d returned NULL", i);
    }
    qsort(p, N, sizeof p[0], cmp_ptr);
    for (int i = 1; i < N; i++)
        CHECKF(p[i] != p[i - 1] || p[i] == NULL, "malloc(0) returned %p twice", p[i]);
    for (int i = 0; i < N; i++)
        free(p[i]);
    /* and again after the frees: still non-NULL */
    void *q = malloc(0);
    CHECK(q != NULL);
    free(q);
    q = calloc(0, 16);
    free(q);
    q = calloc(16, 0);
    free(q);
}

static void test_calloc(void)
{
    /* Dirty memory then calloc the same sizes: recycled blocks must be zeroed. */
    size_t sizes[] = {1, 8, 16, 24, 48, 100, 128, 256, 1000, 4096, 5000, 20000, 65536, 100000,
                      300000, 1 * MiB, 3 * MiB};
    enum { PER = 40 };
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        int per = n >= MiB ? 4 : PER;
        void *p[PER];
        for (int i = 0; i < per; i++) {
            p[i] = malloc(n);
            CHECK(p[i] != NULL);
            if (p[i])
                memset(p[i], 0xAA, n);
        }
        for (int i = per - 1; i >= 0; i--)
            free(p[i]);
        for (int i = 0; i < per; i++) {
            p[i] = calloc(1, n);
            CHECKF(p[i] != NULL, "calloc(1, %zu)", n);
            if (!p[i])
                continue;
            long off = hk_first_nonzero(p[i], n);
            CHECKF(off < 0, "calloc(1, %zu) = %p: byte %ld not zero (recycled memory)", n, p[i],
                   off);
            memset(p[i], 0xAA, n);
        }
        for (int i = 0; i < per; i++)
            free(p[i]);
        /* the n-elements form */
        void *q = calloc(n, 3);
        CHECK(q != NULL);
        if (q)
            CHECKF(hk_first_nonzero(q, n * 3) < 0, "calloc(%zu, 3) not zeroed", n);
        free(q);
    }
    /* large */
    size_t large[] = {8 * MiB, 33 * MiB + 17, 64 * MiB};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        unsigned char *q = calloc(large[i], 1);
        CHECKF(q != NULL, "calloc(%zu, 1)", large[i]);
        if (!q)
            continue;
        CHECKF(hk_first_nonzero(q, large[i]) < 0, "calloc(%zu, 1) not zeroed", large[i]);
        memset(q, 0xAA, large[i]);
        free(q);
        q = calloc(1, large[i]);
        CHECK(q != NULL);
        if (q)
            CHECKF(hk_first_nonzero(q, large[i]) < 0, "calloc(1, %zu) after free not zeroed",
                   large[i]);
        free(q);
    }
    /* overflow of nmemb * size */
    struct { size_t a, b; } ov[] = {
        {SIZE_MAX / 2, 3}, {SIZE_MAX, SIZE_MAX}, {(size_t)1 << 33, (size_t)1 << 31},
        {3, SIZE_MAX / 2}, {SIZE_MAX, 2}, {65537, SIZE_MAX / 65536},
    };
    for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
        errno = 0;
        void *q = calloc(ov[i].a, ov[i].b);
        CHECKF(q == NULL, "calloc(%zu, %zu) overflow returned %p", ov[i].a, ov[i].b, q);
        CHECKF(errno == ENOMEM, "calloc(%zu, %zu) errno %d, want ENOMEM", ov[i].a, ov[i].b, errno);
        if (q)
            free(q);
    }
}

static void test_huge_requests(void)
{
    size_t huge[] = {v_size_max, v_size_max - 1, v_size_max - 4096, v_ptrdiff_max,
                     v_ptrdiff_max + 1, (size_t)1 << 62};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        errno = 0;
        void *p = malloc(huge[i]);
        CHECKF(p == NULL, "malloc(%zu) returned %p", huge[i], p);
        CHECKF(errno == ENOMEM, "malloc(%zu) errno %d, want ENOMEM", huge[i], errno);
        free(p);

        /* realloc failure leaves the block valid and unchanged */
        unsigned char *q = malloc(100);
        CHECK(q != NULL);
        if (!q)
            continue;
        hk_fill(q, 100, 77);
        errno = 0;
        void *r = realloc(q, huge[i]);
        CHECKF(r == NULL, "realloc(p, %zu) returned %p", huge[i], r);
        CHECKF(errno == ENOMEM, "realloc(p, %zu) errno %d, want ENOMEM", huge[i], errno);
        if (r) {
            free(r);
            continue;
        }
        CHECK(hk_verify(q, 100, 77) < 0);
        q = realloc(q, 200); /* still usable */
        CHECK(q != NULL);
        if (q)
            CHECK(hk_verify(q, 100, 77) < 0);
        free(q);

        /* the aligned entry points too */
        errno = 0;
        p = aligned_alloc(64, huge[i]);
        CHECKF(p == NULL && errno == ENOMEM, "aligned_alloc(64, %zu) = %p errno %d", huge[i], p,
               errno);
        free(p);
        errno = 0;
        p = memalign(4096, huge[i]);
        CHECKF(p == NULL && errno == ENOMEM, "memalign(4096, %zu) = %p errno %d", huge[i], p,
               errno);
        free(p);
        void *out = (void *)0x1234;
        int rc = posix_memalign(&out, 256, huge[i]);
        CHECKF(rc == ENOMEM, "posix_memalign(256, %zu) returned %d, want ENOMEM", huge[i], rc);
        CHECKF(out == (void *)0x1234, "posix_memalign failure modified the out-pointer");
        if (rc == 0)
            free(out);
        errno = 0;
        p = valloc(huge[i]);
        CHECKF(p == NULL && errno == ENOMEM, "valloc(%zu) = %p errno %d", huge[i], p, errno);
        free(p);
    }
    /* a large block realloc'd to an impossible size stays valid as well */
    unsigned char *q = malloc(6 * MiB);
    CHECK(q != NULL);
    if (q) {
        hk_fill(q, 6 * MiB, 9);
        errno = 0;
        void *r = realloc(q, v_size_max - 8192);
        CHECK(r == NULL && errno == ENOMEM);
        if (!r) {
            CHECK(hk_verify(q, 6 * MiB, 9) < 0);
            free(q);
        } else {
            free(r);
        }
    }
}

static void test_reallocarray(void)
{
    unsigned char *p = malloc(64);
    CHECK(p != NULL);
    if (!p)
        return;
    hk_fill(p, 64, 5);
    errno = 0;
    void *q = reallocarray(p, v_size_max / 2, 3);
    CHECKF(q == NULL, "reallocarray overflow returned %p", q);
    CHECKF(errno == ENOMEM, "reallocarray overflow errno %d, want ENOMEM", errno);
    if (q) {
        free(q);
        return;
    }
    CHECK(hk_verify(p, 64, 5) < 0);
    errno = 0;
    q = reallocarray(p, v_size_max >> 30, (size_t)1 << 32);
    CHECK(q == NULL && errno == ENOMEM);
    if (q) {
        free(q);
        return;
    }
    q = reallocarray(p, 100, 40); /* 4000 bytes: fine */
    CHECK(q != NULL);
    if (!q) {
        free(p);
        return;
    }
    CHECK(hk_verify(q, 64, 5) < 0);
    memset(q, 1, 4000);
    void *r = reallocarray(NULL, 10, 10);
    CHECK(r != NULL);
    free(r);
    free(q);
}

static void test_posix_memalign_errors(void)
{
    size_t bad[] = {0, 1, 2, 3, sizeof(void *) / 2, 24, 48, 100, 4097, (size_t)3 << 20,
                    SIZE_MAX, ((size_t)1 << 63) + 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *out = (void *)0xdeadbeef;
        int rc = posix_memalign(&out, bad[i], 64);
        CHECKF(rc == EINVAL, "posix_memalign(align=%zu) returned %d, want EINVAL", bad[i], rc);
        CHECKF(out == (void *)0xdeadbeef, "posix_memalign(align=%zu) modified the out-pointer",
               bad[i]);
        if (rc == 0)
            free(out);
    }
    /* sizeof(void*) itself is valid, and so is size 0 */
    void *out = NULL;
    CHECK(posix_memalign(&out, sizeof(void *), 10) == 0 && out != NULL);
    free(out);
    out = NULL;
    CHECK(posix_memalign(&out, 64, 0) == 0);
    free(out);
}

static void check_aligned_block(const char *fn, void *p, size_t align, size_t size)
{
    CHECKF(p != NULL, "%s(align=%zu, size=%zu) returned NULL", fn, align, size);
    if (!p)
        return;
    CHECKF((uintptr_t)p % align == 0, "%s(align=%zu, size=%zu) = %p misaligned", fn, align, size,
           p);
    CHECKF(malloc_usable_size(p) >= size, "%s(align=%zu, size=%zu): usable %zu", fn, align, size,
           malloc_usable_size(p));
    memset(p, 0xC3, size);
}

static void test_aligned(void)
{
    /* Keep each round's blocks live together and verify them afterwards, so an
     * aligned block overlapping a neighbour is noticed. */
    for (size_t align = 16; align <= 4 * MiB; align *= 2) {
        size_t sizes[] = {0, 1, align - 1, align, align + 1, 3 * align};
        struct blk live[3 * 6];
        size_t nlive = 0;
        for (size_t si = 0; si < 6; si++) {
            size_t n = sizes[si];
            void *a = aligned_alloc(align, n);
            check_aligned_block("aligned_alloc", a, align, n);
            void *m = memalign(align, n);
            check_aligned_block("memalign", m, align, n);
            void *pm = (void *)0x99;
            int rc = posix_memalign(&pm, align, n);
            CHECKF(rc == 0, "posix_memalign(align=%zu, size=%zu) = %d", align, n, rc);
            if (rc == 0)
                check_aligned_block("posix_memalign", pm, align, n);
            else
                pm = NULL;
            void *ps[3] = {a, m, pm};
            for (int k = 0; k < 3; k++)
                if (ps[k]) {
                    hk_fill(ps[k], n, align * 100 + nlive);
                    live[nlive++] = (struct blk){ps[k], n};
                }
        }
        for (size_t i = 0; i < nlive; i++) {
            long off = hk_verify(live[i].p, live[i].n, align * 100 + i);
            CHECKF(off < 0, "aligned block %p (align %zu, %zu bytes) corrupted at %ld",
                   (void *)live[i].p, align, live[i].n, off);
        }
        /* realloc of an aligned block keeps its contents */
        if (nlive > 0) {
            struct blk b = live[nlive - 1];
            unsigned char *r = realloc(b.p, b.n * 2 + 100);
            CHECK(r != NULL);
            if (r) {
                CHECK(hk_verify(r, b.n, align * 100 + nlive - 1) < 0);
                live[nlive - 1].p = r;
                live[nlive - 1].n = b.n * 2 + 100;
            }
        }
        check_disjoint(live, nlive);
        for (size_t i = 0; i < nlive; i++)
            free(live[i].p);
    }
    /* alignments below 16 (memalign accepts any power of two) */
    for (size_t align = 1; align < 16; align *= 2) {
        void *p = memalign(align, 40);
        CHECKF(p != NULL && (uintptr_t)p % align == 0, "memalign(%zu, 40) = %p", align, p);
        free(p);
        p = aligned_alloc(align, 40);
        CHECKF(p != NULL && (uintptr_t)p % align == 0, "aligned_alloc(%zu, 40) = %p", align, p);
        free(p);
    }
    /* many small aligned blocks at once: distinct and aligned */
    enum { N = 500 };
    struct blk many[N];
    for (int i = 0; i < N; i++) {
        size_t align = (size_t)32 << (i % 6); /* 32..1024 */
        size_t n = (size_t)(i * 13 % 700) + 1;
        many[i].p = aligned_alloc(align, n);
        many[i].n = n;
        check_aligned_block("aligned_alloc", many[i].p, align, n);
        if (!many[i].p) {
            many[i].p = malloc(1);
            many[i].n = 1;
        }
    }
    check_disjoint(many, N);
    for (int i = 0; i < N; i++)
        free(many[i].p);
}

static void test_valloc_pvalloc(void)
{
    size_t pg = hk_page_size();
    size_t sizes[] = {1, 100, pg - 1, pg, pg + 1, 3 * pg, 70000, 2 * MiB + 3};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        void *p = valloc(n);
        CHECKF(p != NULL && (uintptr_t)p % pg == 0, "valloc(%zu) = %p", n, p);
        if (p) {
            CHECK(malloc_usable_size(p) >= n);
            memset(p, 1, n);
        }
        free(p);

        p = pvalloc(n);
        size_t rounded = (n + pg - 1) / pg * pg;
        CHECKF(p != NULL && (uintptr_t)p % pg == 0, "pvalloc(%zu) = %p", n, p);
        if (p) {
            size_t us = malloc_usable_size(p);
            CHECKF(us >= rounded, "pvalloc(%zu): usable %zu < %zu", n, us, rounded);
            /* glibc reports usable sizes that are not page multiples; hakmem's
             * contract is a whole number of pages. */
            if (hk_is_hakmem())
                CHECKF(us % pg == 0, "pvalloc(%zu): usable size %zu not a multiple of %zu", n,
                       us, pg);
            memset(p, 2, rounded);
        }
        free(p);
    }
    /* pvalloc(0): glibc hands out a minimum chunk; hakmem gives one page. */
    void *p = pvalloc(0);
    CHECKF(p != NULL && (uintptr_t)p % pg == 0, "pvalloc(0) = %p", p);
    if (p && hk_is_hakmem()) {
        CHECKF(malloc_usable_size(p) >= pg, "pvalloc(0): usable %zu < one page",
               malloc_usable_size(p));
        memset(p, 3, pg);
    }
    free(p);
}

static void realloc_walk(unsigned char *p, size_t cur, uint64_t key)
{
    static const size_t tiers[] = {8,       100,      1000,     5000,     70000,   300000,
                                   5 * MiB, 40 * MiB, 5 * MiB,  300000,   70000,   5000,
                                   1000,    100,      8,        40 * MiB, 8,       300000,
                                   1000,    5 * MiB,  100};
    for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++) {
        size_t n = tiers[i];
        unsigned char *q = realloc(p, n);
        CHECKF(q != NULL, "realloc(%p, %zu) from %zu bytes", (void *)p, n, cur);
        if (!q)
            break;
        CHECKF((uintptr_t)q % 16 == 0 || n < 16, "realloc to %zu: %p misaligned", n, (void *)q);
        size_t keep = cur < n ? cur : n;
        long off = hk_verify(q, keep, key);
        CHECKF(off < 0, "realloc %zu -> %zu lost contents at offset %ld", cur, n, off);
        CHECK(malloc_usable_size(q) >= n);
        hk_fill(q, n, key);
        p = q;
        cur = n;
    }
    free(p);
}

static void test_realloc(void)
{
    unsigned char *p = malloc(8);
    CHECK(p != NULL);
    if (p) {
        hk_fill(p, 8, 1);
        realloc_walk(p, 8, 1);
    }
    /* the same walk with other allocations in between (no in-place growth) */
    void *spacers[8];
    p = malloc(8);
    for (int i = 0; i < 8; i++)
        spacers[i] = malloc((size_t)64 << i);
    if (p) {
        hk_fill(p, 8, 2);
        realloc_walk(p, 8, 2);
    }
    for (int i = 0; i < 8; i++)
        free(spacers[i]);
    /* starting from an aligned block */
    p = aligned_alloc(4096, 5000);
    CHECK(p != NULL);
    if (p) {
        hk_fill(p, 5000, 3);
        realloc_walk(p, 5000, 3);
    }
    /* small steps: grow one byte at a time, then shrink */
    p = NULL;
    size_t cur = 0;
    for (size_t n = 1; n <= 600; n++) {
        unsigned char *q = realloc(p, n);
        CHECK(q != NULL);
        if (!q)
            break;
        CHECKF(hk_verify(q, cur, 4) < 0, "realloc grow to %zu lost contents", n);
        hk_fill(q, n, 4);
        p = q;
        cur = n;
    }
    for (size_t n = cur; n >= 1 && p; n -= 7) {
        unsigned char *q = realloc(p, n);
        CHECK(q != NULL);
        if (!q)
            break;
        CHECKF(hk_verify(q, n, 4) < 0, "realloc shrink to %zu lost contents", n);
        p = q;
        if (n <= 7)
            break;
    }
    free(p);
    /* same size */
    p = malloc(1000);
    if (p) {
        hk_fill(p, 1000, 5);
        unsigned char *q = realloc(p, 1000);
        CHECK(q != NULL);
        if (q) {
            CHECK(hk_verify(q, 1000, 5) < 0);
            p = q;
        }
        free(p);
    }
    /* realloc(NULL, n) behaves as malloc(n) */
    size_t ns[] = {0, 1, 24, 1000, 100000, 3 * MiB};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        unsigned char *q = realloc(NULL, ns[i]);
        CHECKF(q != NULL, "realloc(NULL, %zu) returned NULL", ns[i]);
        if (!q)
            continue;
        CHECK(ns[i] < 16 || (uintptr_t)q % 16 == 0);
        CHECK(malloc_usable_size(q) >= ns[i]);
        memset(q, 7, ns[i]);
        free(q);
    }
    /* realloc(p, 0): either frees and returns NULL (glibc) or returns a
     * freeable minimum-size block; either way no crash and no leak. */
    p = malloc(50);
    if (p) {
        void *q = realloc(p, 0);
        free(q);
    }
}

static void test_usable_size(void)
{
    CHECK(malloc_usable_size(NULL) == 0);
    enum { N = 1200 };
    static struct blk b[N];
    size_t s = 1;
    for (int i = 0; i < N; i++) {
        b[i].p = malloc(s);
        CHECK(b[i].p != NULL);
        b[i].n = b[i].p ? malloc_usable_size(b[i].p) : 0;
        CHECKF(b[i].n >= s, "malloc_usable_size(malloc(%zu)) = %zu", s, b[i].n);
        CHECKF(b[i].n <= s + s / 2 + 4096 || s > 64 * KiB,
               "malloc_usable_size(malloc(%zu)) = %zu is implausibly large", s, b[i].n);
        /* all of it is writable and does not overlap anything else */
        if (b[i].p)
            hk_fill(b[i].p, b[i].n, (uint64_t)i * 31);
        /* every third size of the dense-then-geometric sequence: 1..~600000 */
        s = next_size(next_size(next_size(s)));
        if (s > 600000)
            s = 1 + (size_t)i % 7;
    }
    for (int i = 0; i < N; i++) {
        if (!b[i].p)
            continue;
        long off = hk_verify(b[i].p, b[i].n, (uint64_t)i * 31);
        CHECKF(off < 0, "block %p with usable size %zu corrupted at %ld (usable size overlaps?)",
               (void *)b[i].p, b[i].n, off);
        CHECK(malloc_usable_size(b[i].p) == b[i].n);
    }
    for (int i = 0; i < N; i++)
        free(b[i].p);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void test_mallinfo_and_friends(void)
{
    enum { N = 200 };
    void *p[N];
    size_t live = 0;
    for (int i = 0; i < N; i++) {
        p[i] = malloc(1000);
        if (p[i]) {
            memset(p[i], 1, 1000);
            live += 1000;
        }
    }
    /* 64 MiB: above glibc's largest dynamic mmap threshold, so it is counted
     * in hblkhd there too */
    void *big = malloc(64 * MiB);
    CHECK(big != NULL);
    if (big) {
        memset(big, 1, 64 * MiB);
        live += 64 * MiB;
    }

    struct mallinfo2 m2 = mallinfo2();
    CHECKF(m2.arena > 0, "mallinfo2().arena = %zu", m2.arena);
    CHECKF(m2.hblkhd > 0, "mallinfo2().hblkhd = %zu with a 64 MiB block live", m2.hblkhd);
    CHECKF(m2.arena + m2.hblkhd >= live, "mallinfo2: arena %zu + hblkhd %zu < %zu bytes live",
           m2.arena, m2.hblkhd, live);
    CHECKF(m2.arena < ((size_t)1 << 40) && m2.hblkhd < ((size_t)1 << 40),
           "mallinfo2: implausible arena %zu / hblkhd %zu", m2.arena, m2.hblkhd);
    /* in-use bytes cannot exceed what was obtained (whether or not an
     * allocator counts mmapped blocks in uordblks) */
    CHECKF(m2.uordblks <= m2.arena + m2.hblkhd, "mallinfo2: uordblks %zu > arena %zu + hblkhd %zu",
           m2.uordblks, m2.arena, m2.hblkhd);
    CHECKF(m2.uordblks > 0, "mallinfo2: uordblks 0 with %zu bytes live", live);

    struct mallinfo m = mallinfo();
    CHECKF(m.arena != 0 || m.hblkhd != 0, "mallinfo(): arena %d hblkhd %d", m.arena, m.hblkhd);

    for (int i = 0; i < N; i++)
        free(p[i]);
    free(big);

    int t = malloc_trim(0);
    CHECKF(t == 0 || t == 1, "malloc_trim(0) = %d", t);
    t = malloc_trim(1 * MiB);
    CHECKF(t == 0 || t == 1, "malloc_trim(1 MiB) = %d", t);

    int params[] = {M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX, M_TOP_PAD, 12345};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        int r = mallopt(params[i], 128 * 1024);
        CHECKF(r == 0 || r == 1, "mallopt(%d) = %d", params[i], r);
    }
    /* the allocator still works after mallopt/malloc_trim */
    void *q = malloc(200000);
    CHECK(q != NULL);
    free(q);

    /* malloc_stats writes something to stderr */
    fflush(stderr);
    FILE *tmp = tmpfile();
    CHECK(tmp != NULL);
    if (tmp) {
        int saved = dup(2);
        dup2(fileno(tmp), 2);
        malloc_stats();
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        struct stat st;
        CHECK(fstat(fileno(tmp), &st) == 0);
        CHECKF(st.st_size > 0, "malloc_stats() wrote nothing to stderr");
        fclose(tmp);
    }
}
#pragma GCC diagnostic pop

static void test_libc_aliases(void)
{
    unsigned char *p = __libc_malloc(100);
    CHECK(p != NULL);
    if (p) {
        memset(p, 1, 100);
        free(p);
    }
    p = malloc(300);
    CHECK(p != NULL);
    if (p) {
        memset(p, 2, 300);
        __libc_free(p);
    }
    __libc_free(NULL);

    for (int round = 0; round < 2; round++) {
        /* dirty, free, then __libc_calloc must still zero */
        p = malloc(2000);
        if (p) {
            memset(p, 0xAA, 2000);
            __libc_free(p);
        }
        p = __libc_calloc(20, 100);
        CHECK(p != NULL);
        if (p) {
            CHECK(hk_first_nonzero(p, 2000) < 0);
            free(p);
        }
    }
    errno = 0;
    CHECK(__libc_calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);

    p = malloc(50);
    if (p) {
        hk_fill(p, 50, 11);
        unsigned char *q = __libc_realloc(p, 100000);
        CHECK(q != NULL);
        if (q) {
            CHECK(hk_verify(q, 50, 11) < 0);
            q = realloc(q, 10);
            CHECK(q != NULL);
            if (q)
                CHECK(hk_verify(q, 10, 11) < 0);
            __libc_free(q);
        } else {
            free(p);
        }
    }
    p = __libc_realloc(NULL, 77);
    CHECK(p != NULL);
    free(p);

    p = __libc_memalign(256, 1000);
    CHECK(p != NULL && (uintptr_t)p % 256 == 0);
    if (p) {
        memset(p, 3, 1000);
        CHECK(malloc_usable_size(p) >= 1000);
        free(p);
    }
    p = __libc_memalign(64 * KiB, 3 * MiB);
    CHECK(p != NULL && (uintptr_t)p % (64 * KiB) == 0);
    if (p) {
        memset(p, 3, 3 * MiB);
        __libc_free(p);
    }
}

static void test_cfree(void)
{
    /* cfree is only a compat symbol in glibc >= 2.26 (not linkable), so look
     * it up dynamically; hakmem must export it. */
    void (*cf)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
    if (hk_is_hakmem())
        CHECKF(cf != NULL, "hakmem does not export cfree");
    if (!cf)
        return;
    void *p = malloc(123);
    CHECK(p != NULL);
    cf(p);
    cf(NULL);
    p = malloc(5 * MiB);
    CHECK(p != NULL);
    cf(p);
}

/* Announce each section on stdout first, so that when the allocator aborts
 * the last line shows where. */
#define SECTION(fn)                                                           \
    do {                                                                      \
        printf("api: %s\n", #fn);                                             \
        fflush(stdout);                                                       \
        fn();                                                                 \
    } while (0)

int main(void)
{
    hk_start("api");
    SECTION(test_alignment_and_disjointness);
    SECTION(test_integrity);
    SECTION(test_malloc_zero);
    SECTION(test_calloc);
    SECTION(test_huge_requests);
    SECTION(test_reallocarray);
    SECTION(test_posix_memalign_errors);
    SECTION(test_aligned);
    SECTION(test_valloc_pvalloc);
    SECTION(test_realloc);
    SECTION(test_usable_size);
    SECTION(test_mallinfo_and_friends);
    SECTION(test_libc_aliases);
    SECTION(test_cfree);
    return hk_finish();
}
