/* rss_return.c: freed memory must go back to the OS.
 *
 * Allocates about 512 MiB of mixed blocks (many small 16 B..1 KiB, mid-sized
 * 1..200 KiB, a few large 1..8 MiB), touches every page, frees them all in
 * random order, then for one second does light activity (a few small
 * malloc/free every millisecond, as a real program would). Prints the peak
 * (VmHWM) and current VmRSS in KiB, and exits 1 if the current RSS is more than
 * 10% of the peak.
 *
 * usage: rss_return [total-MiB (default 512)] [idle-seconds (default 1)]
 */
#include "common.h"

#include <sys/mman.h>

#define MiB ((size_t)1 << 20)

struct rec {
    unsigned char *p;
    size_t n;
};

int main(int argc, char **argv)
{
    hk_start("rss_return");
    size_t total = (argc > 1 ? (size_t)atol(argv[1]) : 512) * MiB;
    double idle = argc > 2 ? atof(argv[2]) : 1.0;
    /* Budget: 1/4 small, 3/8 mid, 3/8 large. */
    size_t budget[3] = {total / 4, total * 3 / 8, total * 3 / 8};
    size_t cap = total / 16 + 1024; /* max blocks: small blocks average ~520 B */

    /* the table lives outside the allocator, so it does not count as its RSS */
    struct rec *tab = mmap(NULL, cap * sizeof *tab, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tab == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    uint64_t rs = 0x9e3779b97f4a7c15ULL;
    size_t nb = 0;
    size_t used[3] = {0, 0, 0};
    /* interleave the three kinds, so they share the heap as in a real program */
    while (nb < cap && (used[0] < budget[0] || used[1] < budget[1] || used[2] < budget[2])) {
        uint64_t r = hk_rand(&rs) % 1000;
        int kind = r < 990 ? 0 : r < 999 ? 1 : 2;
        if (used[kind] >= budget[kind])
            kind = used[0] < budget[0] ? 0 : used[1] < budget[1] ? 1 : 2;
        size_t n = kind == 0   ? hk_range(&rs, 16, 1024)
                   : kind == 1 ? hk_range(&rs, 1024, 200 * 1024)
                               : hk_range(&rs, 1 * MiB, 8 * MiB);
        unsigned char *p = malloc(n);
        if (!p) {
            CHECKF(p != NULL, "malloc(%zu) failed after %zu MiB", n,
                   (used[0] + used[1] + used[2]) >> 20);
            break;
        }
        memset(p, (int)(nb & 0xff) | 1, n); /* touch every page */
        tab[nb++] = (struct rec){p, n};
        used[kind] += n;
    }
    long peak_during = hk_status_kib("VmRSS");

    /* free everything in random order */
    for (size_t i = nb; i > 1; i--) {
        size_t j = (size_t)(hk_rand(&rs) % i);
        struct rec t = tab[i - 1];
        tab[i - 1] = tab[j];
        tab[j] = t;
    }
    for (size_t i = 0; i < nb; i++) {
        CHECK(tab[i].p[0] == tab[i].p[tab[i].n - 1]);
        free(tab[i].p);
    }
    munmap(tab, cap * sizeof *tab);

    /* light activity: a few small malloc/free per millisecond */
    double end = hk_now() + idle;
    long rounds = 0;
    while (hk_now() < end) {
        void *q[4];
        for (int k = 0; k < 4; k++) {
            q[k] = malloc(hk_range(&rs, 16, 512));
            if (q[k])
                memset(q[k], 1, 16);
        }
        for (int k = 0; k < 4; k++)
            free(q[k]);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        rounds++;
    }

    long hwm = hk_status_kib("VmHWM"), rss = hk_status_kib("VmRSS");
    printf("rss_return: %zu blocks, %zu MiB (small %zu, mid %zu, large %zu MiB); RSS while live "
           "%ld KiB; peak VmHWM %ld KiB; VmRSS after free + %.1f s idle: %ld KiB (%.1f%% of "
           "peak)\n",
           nb, (used[0] + used[1] + used[2]) >> 20, used[0] >> 20, used[1] >> 20, used[2] >> 20,
           peak_during, hwm, idle, rss, hwm > 0 ? 100.0 * (double)rss / (double)hwm : 0.0);
    CHECK(rounds > 0);
    CHECKF(hwm >= (long)(total >> 10) * 9 / 10, "peak %ld KiB: blocks were not all touched?",
           hwm);
    CHECKF(rss * 10 <= hwm, "VmRSS %ld KiB is more than 10%% of the peak %ld KiB", rss, hwm);
    return hk_finish();
}
