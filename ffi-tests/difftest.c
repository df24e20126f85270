/* difftest.c: randomised differential tester.
 *
 * THREADS threads run random operations on one shared table of SLOTS slots:
 * malloc / calloc / realloc / reallocarray / free / aligned_alloc /
 * posix_memalign / memalign, plus random writes into live blocks. Slots are
 * shared, so a block allocated by one thread is often grown or freed by
 * another. Every write is mirrored into a shadow copy that lives outside the
 * allocator (one fixed mmap'd area per slot), and every block's full contents
 * are compared against its shadow before each realloc or free, as well as its
 * alignment and usable size. Some blocks are used up to the size that
 * malloc_usable_size() reports, so the slack it promises is checked too.
 *
 * usage: difftest [seed [seconds [threads [max-ops]]]]
 *   DIFFTEST_PROTECT=1 keeps each slot's shadow read-only except while its
 *   slot is worked on, so a stray write into the shadow faults where it happens
 *   (about ten times slower).
 *   seed 0 (or none) picks one from the clock. The seed is printed at the start
 *   and with any failure. Scheduling makes multi-threaded runs
 *   non-deterministic; with 1 thread a seed reproduces the exact sequence.
 */
#include "common.h"

#include <execinfo.h>
#include <signal.h>
#include <sys/mman.h>

#define SLOTS 1024
#define MAX_BLOCK ((size_t)1 << 20) /* shadow capacity per slot */
#define MAXT 32

enum how { H_MALLOC, H_CALLOC, H_ALIGNED_ALLOC, H_POSIX_MEMALIGN, H_MEMALIGN, H_REALLOC_NULL };
static const char *how_name[] = {"malloc",         "calloc",   "aligned_alloc",
                                 "posix_memalign", "memalign", "realloc(NULL)"};

struct slot {
    pthread_mutex_t mu;
    unsigned char *p;
    size_t n;
    size_t align;
    int how;      /* how the block was made, or -1 after a realloc */
    int last_tid; /* thread that last touched it */
    int full;     /* n was raised to malloc_usable_size(): never realloc'd */
    int dropped;  /* translation checks left since the slot's pages were dropped */
    /* The slot's last operations, printed when a check fails. */
    struct event {
        char op; /* a alloc, r realloc, w write (memset), f write (fill), x free */
        int tid;
        void *p;
        size_t n, off, len;
        uint64_t w0, sh0; /* the block's and the shadow's first word after it */
        double t;         /* when (s since the start) */
    } hist[8];
    unsigned nhist;
};

static struct slot slots[SLOTS];
static unsigned char *shadow; /* SLOTS * MAX_BLOCK bytes, MAP_NORESERVE */
static uint64_t seed;
static double t_start, deadline;
static long max_ops;
static atomic_long ops_done, n_alloc, n_free, n_realloc, n_write, n_handoff, n_tcheck;
static int memfd = -1; /* /proc/self/mem: the kernel's view of our pages */
static atomic_int stop;

static unsigned char *shadow_of(int i) { return shadow + (size_t)i * MAX_BLOCK; }

/* Every thread's zero writes (a calloc's zeroing, of the block by the
 * allocator and of the shadow by the test; a memset of byte 0) and every
 * MADV_DONTNEED of a slot's shadow, in one ring: a failure report lists
 * those of the time since the failing slot was last seen intact that put up
 * to 8 zero bytes at the start of a page, on the block's side or the
 * shadow's (written without a lock, read racily: a diagnostic only). */
#define OPLOG 65536
static struct logent {
    double t;
    int tid, slot;
    char op; /* c calloc zeroing, 0 memset of zeros, z MADV_DONTNEED */
    size_t len;
    void *block;          /* where the zeros went in the block (calloc: the block) */
    unsigned char *sh;    /* where they went in the shadow */
} oplog[OPLOG];

/* How many bytes at the start of a page [x, x+len) covers, when that is 1 to
 * 8 (the write starts a page, or ends just past one); else 0. */
static size_t page_prefix(uintptr_t x, size_t len)
{
    if (len == 0)
        return 0;
    if (x % 4096 == 0)
        return len <= 8 ? len : 0;
    uintptr_t end = x + len;
    if (x / 4096 != (end - 1) / 4096 && end % 4096 >= 1 && end % 4096 <= 8)
        return end % 4096;
    return 0;
}
static atomic_ulong oplog_n;

static void log_op(int tid, int slot, char op, size_t len, void *block, unsigned char *sh);
static void check_kernel_view(int tid, int i, const unsigned char *x, size_t len, size_t own,
                              const char *what);

static void note(struct slot *s, char op, int tid, size_t off, size_t len)
{
    struct event *e = &s->hist[s->nhist++ % 8];
    e->op = op;
    e->tid = tid;
    e->p = s->p;
    e->n = s->n;
    e->off = off;
    e->len = len;
    e->w0 = e->sh0 = 0;
    e->t = hk_now() - t_start;
    if (s->p && s->n >= 8) {
        memcpy(&e->w0, s->p, 8);
        memcpy(&e->sh0, shadow_of((int)(s - slots)), 8);
    }
}

static void report(int tid, int i, const char *what, long off)
{
    struct slot *s = &slots[i];
    CHECKF(0, "seed %llu thread %d slot %d: %s: block %p (%zu bytes, %s, align %zu, last touched "
              "by thread %d) differs from its shadow at offset %ld",
           (unsigned long long)seed, tid, i, what, (void *)s->p, s->n,
           s->how >= 0 ? how_name[s->how] : "realloc", s->align, s->last_tid, off);
    /* When: since the start (the events below use the same clock) and the
     * wall clock, to set beside whatever else the machine was doing. */
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", gmtime(&now));
    fprintf(stderr, "difftest: found at %.6f s (%s UTC)\n", hk_now() - t_start, when);
    /* What the block holds instead: how many bytes differ, and its first
     * two words beside the shadow's (a free-list link, zeroed pages, ...). */
    const unsigned char *sh = shadow_of(i);
    size_t bad = 0;
    for (size_t k = 0; k < s->n; k++)
        bad += s->p[k] != sh[k];
    uint64_t w[2] = {0, 0}, v[2] = {0, 0};
    memcpy(w, s->p, s->n < 16 ? s->n : 16);
    memcpy(v, sh, s->n < 16 ? s->n : 16);
    fprintf(stderr, "difftest: shadow of slot %d at %p (shadow area %p)\n", i, (void *)sh,
            (void *)shadow);
    fprintf(stderr,
            "difftest: slot %d: %zu of %zu bytes differ; block words 0x%016llx 0x%016llx, "
            "shadow 0x%016llx 0x%016llx\n",
            i, bad, s->n, (unsigned long long)w[0], (unsigned long long)w[1],
            (unsigned long long)v[0], (unsigned long long)v[1]);
    /* The same words read by the kernel through /proc/self/mem (its own
     * mapping of the physical page, not this CPU's translation of the
     * address): if these differ from the words above, the program and the
     * kernel see different memory at one address. */
    int mem = open("/proc/self/mem", O_RDONLY);
    if (mem >= 0) {
        uint64_t kw[2] = {0, 0}, kv[2] = {0, 0};
        size_t k = s->n < 16 ? s->n : 16;
        if (pread(mem, kw, k, (off_t)(uintptr_t)s->p) == (ssize_t)k &&
            pread(mem, kv, k, (off_t)(uintptr_t)sh) == (ssize_t)k)
            fprintf(stderr,
                    "difftest: read through /proc/self/mem: block words 0x%016llx 0x%016llx, "
                    "shadow 0x%016llx 0x%016llx\n",
                    (unsigned long long)kw[0], (unsigned long long)kw[1],
                    (unsigned long long)kv[0], (unsigned long long)kv[1]);
        close(mem);
    }
    /* The mappings over the shadow area: one, unless something replaced part
     * of it. */
    FILE *maps = fopen("/proc/self/maps", "r");
    if (maps) {
        char line[512];
        while (fgets(line, sizeof line, maps)) {
            unsigned long lo, hi;
            if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
                lo < (unsigned long)(shadow + (size_t)SLOTS * MAX_BLOCK) &&
                (unsigned long)shadow < hi)
                fprintf(stderr, "difftest: map over the shadow: %s", line);
        }
        fclose(maps);
    }
    /* Any other live slot whose block overlaps this one (read without its
     * lock: a diagnostic only). */
    for (int j = 0; j < SLOTS; j++) {
        struct slot *o = &slots[j];
        if (j == i || !o->p)
            continue;
        if (o->p < s->p + s->n && s->p < o->p + (o->n ? o->n : 1))
            fprintf(stderr, "difftest: slot %d's block %p (%zu bytes, %s) overlaps it\n", j,
                    (void *)o->p, o->n, o->how >= 0 ? how_name[o->how] : "realloc");
    }
    /* The zero writes that put 1 to 8 zero bytes (the size of what went
     * missing so far) at the start of a page, on the block's side or the
     * shadow's, since this slot was last seen intact (the last event after
     * which its first word matched), each with the last time its own slot's
     * pages were dropped before it. A stray write through a stale
     * translation keeps its page offset; what went missing so far was
     * always at a page start. */
    double since = 0;
    for (unsigned k = s->nhist; k-- > (s->nhist > 8 ? s->nhist - 8 : 0);) {
        const struct event *e = &s->hist[k % 8];
        if (e->p && e->n >= 8 && e->w0 == e->sh0) {
            since = e->t;
            break;
        }
    }
    unsigned long end = atomic_load(&oplog_n), first = end > OPLOG ? end - OPLOG : 0;
    unsigned long zaps = 0, shown = 0;
    for (unsigned long k = first; k < end; k++) {
        const struct logent *g = &oplog[k % OPLOG];
        if (g->t < since)
            continue;
        if (g->op == 'z') {
            zaps++;
            continue;
        }
        size_t kb = page_prefix((uintptr_t)g->block, g->len);
        size_t ks = page_prefix((uintptr_t)g->sh, g->len);
        if ((kb == 0 && ks == 0) || shown >= 100)
            continue;
        shown++;
        double dropped = -1;
        for (unsigned long q = k; q-- > first;) {
            const struct logent *z = &oplog[q % OPLOG];
            if (z->op == 'z' && z->slot == g->slot) {
                dropped = z->t;
                break;
            }
        }
        fprintf(stderr,
                "difftest: at %.6f s thread %d %s slot %d, %zu bytes at block %p / shadow %p "
                "(zero bytes at a page start: %zu on the block's side, %zu on the shadow's)",
                g->t, g->tid, g->op == 'c' ? "calloc zeroing of" : "memset 0 in", g->slot, g->len,
                g->block, (void *)g->sh, kb, ks);
        if (dropped >= 0)
            fprintf(stderr, "; that slot's pages last dropped at %.6f s\n", dropped);
        else
            fprintf(stderr, "; that slot's pages not dropped in the log\n");
    }
    fprintf(stderr, "difftest: %lu zero writes at page starts and %lu page drops by any thread since %.6f s\n",
            shown, zaps, since);
    for (unsigned k = s->nhist > 8 ? s->nhist - 8 : 0; k < s->nhist; k++) {
        struct event *e = &s->hist[k % 8];
        fprintf(stderr,
                "difftest: slot %d event %u at %.6f s: %c by thread %d, block %p (%zu bytes), "
                "[%zu, +%zu), then block 0x%016llx shadow 0x%016llx\n",
                i, k, e->t, e->op, e->tid, e->p, e->n, e->off, e->len,
                (unsigned long long)e->w0, (unsigned long long)e->sh0);
    }
    atomic_store(&stop, 1);
}

static long compare(const unsigned char *p, const unsigned char *sh, size_t n)
{
    if (memcmp(p, sh, n) == 0)
        return -1;
    for (size_t k = 0; k < n; k++)
        if (p[k] != sh[k])
            return (long)k;
    return -1;
}

/* Full check of a live slot. */
static int verify(int tid, int i, const char *what)
{
    struct slot *s = &slots[i];
    if ((uintptr_t)s->p % s->align != 0) {
        CHECKF(0, "seed %llu slot %d: %s: block %p (%zu bytes, from %s) not aligned to %zu",
               (unsigned long long)seed, i, what, (void *)s->p, s->n,
               s->how >= 0 ? how_name[s->how] : "realloc", s->align);
        atomic_store(&stop, 1);
        return 0;
    }
    size_t us = malloc_usable_size(s->p);
    if (us < s->n) {
        CHECKF(0, "seed %llu slot %d: %s: malloc_usable_size %zu < %zu", (unsigned long long)seed,
               i, what, us, s->n);
        atomic_store(&stop, 1);
        return 0;
    }
    long off = compare(s->p, shadow_of(i), s->n);
    if (off >= 0) {
        report(tid, i, what, off);
        return 0;
    }
    return 1;
}

/* Random write of [off, off+len) in both the block and its shadow. */
static void random_write(uint64_t *rs, int tid, int i)
{
    struct slot *s = &slots[i];
    if (s->n == 0)
        return;
    size_t off = (size_t)(hk_rand(rs) % s->n);
    size_t len = (size_t)(hk_rand(rs) % (s->n - off)) + 1;
    if (hk_rand(rs) % 4 == 0 && len > 64)
        len = 64;
    unsigned char b = (unsigned char)hk_rand(rs);
    if (hk_rand(rs) & 1) {
        memset(s->p + off, b, len);
        memset(shadow_of(i) + off, b, len);
        if (b == 0) {
            log_op(tid, i, '0', len, s->p + off, shadow_of(i) + off);
            check_kernel_view(tid, i, s->p + off, len, malloc_usable_size(s->p) - off,
                              "memset 0 of the block");
            check_kernel_view(tid, i, shadow_of(i) + off, len, MAX_BLOCK - off,
                              "memset 0 of the shadow");
        }
        note(s, 'w', tid, off, len);
    } else {
        hk_fill(s->p + off, len, hk_rand(rs));
        memcpy(shadow_of(i) + off, s->p + off, len);
        note(s, 'f', tid, off, len);
    }
}

static size_t random_size(uint64_t *rs)
{
    uint64_t r = hk_rand(rs) % 1000;
    if (r < 10)
        return 0;
    if (r < 600)
        return hk_range(rs, 1, 256);
    if (r < 900)
        return hk_range(rs, 257, 4096);
    if (r < 985)
        return hk_range(rs, 4097, 65536);
    return hk_range(rs, 65537, MAX_BLOCK);
}

/* Whether the k (<= 64) bytes at q, read by this CPU, differ from what the
 * kernel reads there through /proc/self/mem (its page tables): the first
 * 8-byte word that differs (or the first word) in *cpu and *kern, its
 * address in *at. */
static int kernel_differs(uintptr_t q, size_t k, uintptr_t *at, uint64_t *cpu, uint64_t *kern)
{
    unsigned char c[64], m[64];
    memcpy(c, (const void *)q, k);
    int got = pread(memfd, m, k, (off_t)q) == (ssize_t)k;
    size_t d = 0;
    if (got)
        while (d < k && c[d] == m[d])
            d++;
    size_t w = d < k ? d & ~(size_t)7 : 0, wk = k - w < 8 ? k - w : 8;
    *cpu = *kern = 0;
    memcpy(cpu, c + w, wk);
    memcpy(kern, m + w, wk);
    *at = q + w;
    return got && d < k;
}

/* The CPU and the kernel see different bytes at q: this CPU translated the
 * address to another physical page (a stale TLB entry). No program can
 * cause that. With `canary`, the bytes are a canary still in place: report
 * where the write went instead, if it landed on another page of the
 * shadow. */
static void machine_fault(int tid, int i, const char *what, uintptr_t q, size_t k, uint64_t cpu,
                          uint64_t kern, int canary)
{
    CHECKF(0, "seed %llu thread %d (cpu %d) slot %d: %s: %zu bytes at %p read 0x%016llx here "
              "and 0x%016llx through the kernel's page tables",
           (unsigned long long)seed, tid, sched_getcpu(), i, what, k, (void *)q,
           (unsigned long long)cpu, (unsigned long long)kern);
    fprintf(stderr, "difftest: MACHINE FAULT: this CPU's translation of %p differs from the "
                    "kernel's page tables (a stale TLB entry): the machine, not the allocator\n",
            (void *)q);
    /* The word this CPU read came from another physical page: if that page
     * is one of the shadow's, it holds the same word at the same offset
     * (the canary, or whatever the slot there holds). */
    static unsigned char vec[SLOTS * (MAX_BLOCK / 4096)];
    size_t in = q % 4096 & ~(size_t)7;
    if (cpu != 0 && mincore(shadow, SLOTS * MAX_BLOCK, vec) == 0) {
        for (size_t pg = 0; pg < sizeof vec; pg++) {
            const volatile uint64_t *p = (const volatile uint64_t *)(shadow + pg * 4096 + in);
            if ((vec[pg] & 1) && (uintptr_t)p != q && *p == cpu)
                fprintf(stderr,
                        "difftest: this CPU's page is likely %p (slot %zu's shadow, page %zu), "
                        "resident and holding %s\n",
                        (void *)p, pg / (MAX_BLOCK / 4096), pg % (MAX_BLOCK / 4096),
                        canary ? "the canary" : "that word");
        }
    }
    atomic_store(&stop, 1);
}

/* After slot i's shadow pages were dropped (MADV_DONTNEED), the first pages
 * of what is written there again (at most 16, at least the first): write a
 * canary word at each page's start through this CPU's translation, read it
 * back through /proc/self/mem (the kernel's page tables), restore the word.
 * A stray write of the kind the failures of this test have shown (bytes
 * written to one slot's fresh page turning up in another slot's) is caught
 * here, where it happens. */
static void check_translation(int tid, int i, size_t len)
{
    if (memfd < 0)
        return;
    size_t pages = (len + 4095) / 4096;
    if (pages == 0)
        pages = 1;
    if (pages > 16)
        pages = 16;
    for (size_t pg = 0; pg < pages; pg++) {
        volatile uint64_t *w = (volatile uint64_t *)(shadow_of(i) + pg * 4096);
        uint64_t old = *w;
        *w = hk_mix64(seed ^ ((uint64_t)i << 32) ^ ((uint64_t)pg << 20) ^
                      (uint64_t)atomic_load(&n_tcheck)) |
             1;
        uint64_t cpu, kern;
        uintptr_t at;
        if (kernel_differs((uintptr_t)w, 8, &at, &cpu, &kern))
            machine_fault(tid, i, "canary after a drop", at, 8, cpu, kern, 1);
        *w = old;
        atomic_fetch_add_explicit(&n_tcheck, 1, memory_order_relaxed);
    }
}

/* After a zero write to [x, x+len) (calloc's zeroing of a block, a memset
 * of zeros, in a block or a shadow) or a copy the allocator made: the first
 * and the last page start in the range, read by this CPU and through
 * /proc/self/mem, must agree, over up to 64 bytes from the page start that
 * the slot owns (`own` bytes from x: the rest of its usable block, or of
 * its shadow), not only the bytes written. The bytes that went missing in
 * this test's failures were always 2-4 zeros at a page start; a write that
 * went through a stale translation to another physical page reads back the
 * same zeros both ways when the page it was meant for is fresh (all zero),
 * but the bytes after it then differ: this CPU reads the other page's. Such
 * a write is caught here, where it happens. */
static void check_kernel_view(int tid, int i, const unsigned char *x, size_t len, size_t own,
                              const char *what)
{
    if (memfd < 0 || len == 0)
        return;
    uintptr_t lo = ((uintptr_t)x + 4095) & ~(uintptr_t)4095, end = (uintptr_t)x + len;
    uintptr_t lim = (uintptr_t)x + (own > len ? own : len);
    if (lo >= end)
        return;
    uintptr_t hi = (end - 1) & ~(uintptr_t)4095;
    for (uintptr_t q = lo;; q = hi) {
        size_t k = lim - q < 64 ? lim - q : 64;
        uint64_t cpu, kern;
        uintptr_t at;
        if (kernel_differs(q, k, &at, &cpu, &kern))
            machine_fault(tid, i, what, at, k, cpu, kern, 0);
        atomic_fetch_add_explicit(&n_tcheck, 1, memory_order_relaxed);
        if (q == hi)
            break;
    }
}

static void op_alloc(uint64_t *rs, int tid, int i)
{
    struct slot *s = &slots[i];
    size_t n = random_size(rs);
    size_t align = 1;
    int how = (int)(hk_rand(rs) % 10);
    how = how < 5 ? H_MALLOC : how - 4; /* malloc half the time */
    if (how == H_ALIGNED_ALLOC || how == H_POSIX_MEMALIGN || how == H_MEMALIGN) {
        int shift = (int)hk_range(rs, 3, hk_rand(rs) % 8 == 0 ? 21 : 13);
        align = (size_t)1 << shift;
    }
    void *p = NULL;
    switch (how) {
    case H_MALLOC: p = malloc(n); break;
    case H_CALLOC: {
        size_t k = n ? hk_range(rs, 1, 8) : 1;
        n = (n + k - 1) / k * k;
        /* rounded up, n must still fit the slot's shadow: past MAX_BLOCK
         * the zeroing below would write the first bytes of the next slot's
         * shadow (the long run's rare failures, 2026-12-02: 1-7 zero bytes
         * at the start of a slot) */
        if (n > MAX_BLOCK)
            n -= k;
        p = calloc(n / k, k);
        break;
    }
    case H_ALIGNED_ALLOC: p = aligned_alloc(align, n); break;
    case H_POSIX_MEMALIGN:
        if (posix_memalign(&p, align, n) != 0)
            p = NULL;
        break;
    case H_MEMALIGN: p = memalign(align, n); break;
    default: p = realloc(NULL, n); break;
    }
    if (!p) {
        CHECKF(n == 0, "seed %llu: %s(%zu) returned NULL", (unsigned long long)seed,
               how_name[how], n);
        return;
    }
    s->p = p;
    s->n = n;
    /* malloc & co. owe 16-byte alignment for blocks of 16 bytes or more; the
     * aligned entry points owe exactly what was asked for */
    s->align = align > 1 ? align : (n >= 16 ? 16 : 1);
    s->how = how;
    s->last_tid = tid;
    s->full = 0;
    if (how == H_CALLOC) {
        memset(shadow_of(i), 0, n);
        log_op(tid, i, 'c', n, p, shadow_of(i));
        check_kernel_view(tid, i, p, n, malloc_usable_size(p), "calloc's zeroing of the block");
        check_kernel_view(tid, i, shadow_of(i), n, MAX_BLOCK, "calloc zeroing of the shadow");
        verify(tid, i, "calloc zeroing");
    } else {
        /* sometimes use every byte malloc_usable_size() promises */
        if (hk_rand(rs) % 8 == 0) {
            size_t us = malloc_usable_size(p);
            if (us >= n && us <= MAX_BLOCK) {
                n = s->n = us;
                s->full = 1;
            }
        }
        hk_fill(p, n, hk_rand(rs));
        memcpy(shadow_of(i), p, n);
    }
    note(s, 'a', tid, 0, s->n);
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
}

static void op_realloc(uint64_t *rs, int tid, int i)
{
    struct slot *s = &slots[i];
    if (!verify(tid, i, "before realloc"))
        return;
    size_t nn = random_size(rs);
    if (nn == 0)
        nn = 1; /* realloc(p, 0) semantics differ between allocators */
    void *q;
    unsigned char *old = s->p;
    size_t old_us = malloc_usable_size(old);
    if (hk_rand(rs) % 8 == 0 && nn % 4 == 0)
        q = reallocarray(s->p, nn / 4, 4);
    else
        q = realloc(s->p, nn);
    /* a moved block was copied by the allocator: its page starts too */
    if (q && q != old)
        check_kernel_view(tid, i, q, old_us < nn ? old_us : nn, malloc_usable_size(q),
                          "realloc's copy into the block");
    if (!q) {
        CHECKF(0, "seed %llu: realloc(%zu -> %zu) returned NULL", (unsigned long long)seed, s->n,
               nn);
        return;
    }
    size_t keep = s->n < nn ? s->n : nn;
    s->p = q;
    s->n = keep;
    s->align = keep >= 16 && nn >= 16 ? 16 : 1;
    s->how = -1;
    s->last_tid = tid;
    if (!verify(tid, i, "after realloc (preserved prefix)"))
        return;
    /* new tail: write it so it is checked from now on */
    if (nn > keep) {
        hk_fill(s->p + keep, nn - keep, hk_rand(rs));
        memcpy(shadow_of(i) + keep, s->p + keep, nn - keep);
    }
    s->n = nn;
    note(s, 'r', tid, keep, nn);
    atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
}

static void op_free(int tid, int i)
{
    struct slot *s = &slots[i];
    verify(tid, i, "before free");
    if (s->last_tid != tid)
        atomic_fetch_add_explicit(&n_handoff, 1, memory_order_relaxed);
    note(s, 'x', tid, 0, s->n);
    free(s->p);
    if (s->n > 64 * 1024) { /* keep the shadow's RSS down */
        madvise(shadow_of(i), s->n & ~(size_t)4095, MADV_DONTNEED);
        log_op(tid, i, 'z', s->n & ~(size_t)4095, NULL, shadow_of(i));
        s->dropped = 4;
    }
    s->p = NULL;
    s->n = 0;
    atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
}

/* DIFFTEST_PROTECT=1: each slot's shadow is read-only except while the
 * thread holding the slot works on it, so a stray write into it faults where
 * it happens. */
static int protect;

static void set_shadow(int i, int prot)
{
    if (protect)
        CHECK(mprotect(shadow + (size_t)i * MAX_BLOCK, MAX_BLOCK, prot) == 0);
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char msg[160];
    int len = snprintf(msg, sizeof msg, "difftest: signal %d at %p (shadow area %p-%p)\n", sig,
                       si->si_addr, (void *)shadow, (void *)(shadow + (size_t)SLOTS * MAX_BLOCK));
    if (write(2, msg, (size_t)len) < 0)
        _exit(3);
    void *bt[32];
    backtrace_symbols_fd(bt, backtrace(bt, 32), 2);
    _exit(3);
}

static void log_op(int tid, int slot, char op, size_t len, void *block, unsigned char *sh)
{
    struct logent *g = &oplog[atomic_fetch_add_explicit(&oplog_n, 1, memory_order_relaxed) % OPLOG];
    g->t = hk_now() - t_start;
    g->tid = tid;
    g->slot = slot;
    g->op = op;
    g->len = len;
    g->block = block;
    g->sh = sh;
}

static void *worker(void *arg)
{
    int tid = (int)(intptr_t)arg;
    uint64_t rs = hk_mix64(seed ^ ((uint64_t)tid * 0x9e3779b97f4a7c15ULL)) | 1;
    long local = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if ((local & 255) == 0) {
            if (hk_now() >= deadline)
                break;
            if (max_ops && atomic_load(&ops_done) >= max_ops)
                break;
        }
        int i = (int)(hk_rand(&rs) % SLOTS);
        struct slot *s = &slots[i];
        if (pthread_mutex_trylock(&s->mu) != 0)
            continue;
        set_shadow(i, PROT_READ | PROT_WRITE);
        if (!s->p) {
            op_alloc(&rs, tid, i);
        } else {
            uint64_t r = hk_rand(&rs) % 100;
            if (r < 40 || (r < 65 && s->full))
                op_free(tid, i);
            else if (r < 65)
                op_realloc(&rs, tid, i);
            else if (r < 95) {
                random_write(&rs, tid, i);
                s->last_tid = tid;
                atomic_fetch_add_explicit(&n_write, 1, memory_order_relaxed);
            } else
                verify(tid, i, "spot check");
        }
        if (s->dropped > 0 && s->p) {
            check_translation(tid, i, s->n);
            s->dropped--;
        }
        set_shadow(i, PROT_READ);
        pthread_mutex_unlock(&s->mu);
        local++;
        if ((local & 63) == 0)
            atomic_fetch_add_explicit(&ops_done, 64, memory_order_relaxed);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    hk_start("difftest");
    seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0;
    double secs = argc > 2 ? atof(argv[2]) : 3.0;
    int nthreads = argc > 3 ? atoi(argv[3]) : 4;
    max_ops = argc > 4 ? atol(argv[4]) : 0;
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = hk_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)getpid());
        if (seed == 0)
            seed = 1;
    }
    if (nthreads < 1 || nthreads > MAXT) {
        fprintf(stderr, "difftest: 1..%d threads\n", MAXT);
        return 2;
    }
    printf("difftest: seed %llu, %.1f s, %d threads%s\n", (unsigned long long)seed, secs,
           nthreads, max_ops ? ", bounded op count" : "");
    fflush(stdout);

    shadow = mmap(NULL, SLOTS * MAX_BLOCK, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (shadow == MAP_FAILED) {
        perror("difftest: mmap shadow");
        return 2;
    }
    for (int i = 0; i < SLOTS; i++)
        pthread_mutex_init(&slots[i].mu, NULL);
    memfd = open("/proc/self/mem", O_RDONLY);
    protect = getenv("DIFFTEST_PROTECT") && atoi(getenv("DIFFTEST_PROTECT"));
    if (protect) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        for (int i = 0; i < SLOTS; i++)
            set_shadow(i, PROT_READ);
    }

    double t0 = hk_now();
    t_start = t0;
    deadline = t0 + secs;
    pthread_t t[MAXT];
    for (int i = 0; i < nthreads; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);

    /* final sweep: every live block still matches, then free it */
    int live = 0;
    for (int i = 0; i < SLOTS; i++) {
        if (!slots[i].p)
            continue;
        live++;
        if (!atomic_load(&stop))
            verify(-1, i, "final sweep");
        free(slots[i].p);
        slots[i].p = NULL;
    }
    printf("difftest: %ld allocations, %ld reallocs, %ld frees (%ld by another thread), %ld "
           "writes, %ld translation checks, %d live at the end; %.1f s\n",
           atomic_load(&n_alloc), atomic_load(&n_realloc), atomic_load(&n_free),
           atomic_load(&n_handoff), atomic_load(&n_write), atomic_load(&n_tcheck), live,
           hk_now() - t0);
    CHECKF(hk_failed() || (atomic_load(&n_alloc) > 0 && atomic_load(&n_free) > 0),
           "no operations ran");
    if (hk_failed())
        fprintf(stderr, "difftest: FAILED with seed %llu (rerun: difftest %llu %g %d)\n",
                (unsigned long long)seed, (unsigned long long)seed, secs, nthreads);
    return hk_finish();
}
