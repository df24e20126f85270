/* machine_check [SECONDS] [THREADS]: the long differential test's memory
 * traffic without an allocator, as a control for it.
 *
 * difftest keeps a shadow copy of every block in one big anonymous mapping,
 * SLOTS slots of 1 MiB, which its threads share (a slot at a time, under the
 * slot's lock), write with memcpy and drop with MADV_DONTNEED once a big
 * block is freed. This program does the same to the same kind of mapping
 * (same slot count and size, same block sizes), with no allocator: the data
 * written comes from a buffer of each thread's own, and each slot's contents
 * are checked against the pattern they were written from every time a thread
 * takes the slot again. Meanwhile every thread also writes into and drops
 * pages of a second mapping, as an allocator's purges do, so physical pages
 * change hands all the time.
 *
 * A mismatch here (exit status 1, with the slot and the bytes) is the machine
 * losing writes, not an allocator's doing. Only mmap, madvise and pthread
 * locks are used: run it without LD_PRELOAD.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define SLOTS 1024
#define SLOT ((size_t)1 << 20)
#define TRAFFIC ((size_t)256 << 20)
#define MAXT 32

static unsigned char *shadow, *traffic;
static struct {
    pthread_mutex_t mu;
    uint64_t key; /* the pattern the slot's first n bytes were written from */
    size_t n;
} slot[SLOTS];
static atomic_int stop;
static atomic_long lost, ops, drops;

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Byte i of the pattern `key`. */
static unsigned char pat(uint64_t key, size_t i)
{
    uint64_t x = key ^ ((i >> 3) * 0x9e3779b97f4a7c15ULL);
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return (unsigned char)(x >> ((i & 7) * 8));
}

/* difftest's block sizes: mostly small, now and then up to a whole slot. */
static size_t block_size(uint64_t *s)
{
    uint64_t r = next_rand(s) % 1000;
    if (r < 600)
        return 1 + next_rand(s) % 256;
    if (r < 900)
        return 257 + next_rand(s) % (4096 - 256);
    if (r < 985)
        return 4097 + next_rand(s) % (65536 - 4096);
    return 65537 + next_rand(s) % (SLOT - 65536);
}

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    uint64_t s = (0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1)) ^ (uint64_t)time(NULL);
    unsigned char *buf = mmap(NULL, SLOT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        perror("machine_check: mmap");
        exit(2);
    }
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        /* the other mapping: a few page writes, now and then a dropped range */
        for (int k = 0; k < 4; k++)
            traffic[(next_rand(&s) % (TRAFFIC / 4096)) * 4096 + (next_rand(&s) % 512) * 8] = 1;
        if (next_rand(&s) % 4 == 0) {
            size_t pg = next_rand(&s) % (TRAFFIC / 4096 - 64);
            madvise(traffic + pg * 4096, (1 + next_rand(&s) % 64) * 4096, MADV_DONTNEED);
        }
        int i = (int)(next_rand(&s) % SLOTS);
        if (pthread_mutex_trylock(&slot[i].mu) != 0)
            continue;
        unsigned char *d = shadow + (size_t)i * SLOT;
        size_t n = slot[i].n;
        for (size_t k = 0; k < n; k++) {
            if (d[k] != pat(slot[i].key, k)) {
                size_t bad = 0;
                for (size_t j = 0; j < n; j++)
                    bad += d[j] != pat(slot[i].key, j);
                uint64_t w = 0;
                memcpy(&w, d, n < 8 ? n : 8);
                fprintf(stderr,
                        "machine_check: thread %d slot %d (%zu bytes at %p): first difference "
                        "at offset %zu, %zu bytes differ; first word 0x%016llx\n",
                        t, i, n, (void *)d, k, bad, (unsigned long long)w);
                atomic_fetch_add(&lost, 1);
                break;
            }
        }
        /* "free" a big block: drop its pages, as difftest does */
        if (n > 65536 && next_rand(&s) % 2) {
            madvise(d, n & ~(size_t)4095, MADV_DONTNEED);
            atomic_fetch_add_explicit(&drops, 1, memory_order_relaxed);
        }
        /* "allocate" a new one: fill a buffer, copy it in */
        n = block_size(&s);
        uint64_t key = next_rand(&s) | 1;
        for (size_t k = 0; k < n; k++)
            buf[k] = pat(key, k);
        memcpy(d, buf, n);
        slot[i].n = n;
        slot[i].key = key;
        pthread_mutex_unlock(&slot[i].mu);
        atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int secs = argc > 1 ? atoi(argv[1]) : 60;
    int nthreads = argc > 2 ? atoi(argv[2]) : 4;
    if (secs < 1 || nthreads < 1 || nthreads > MAXT) {
        fprintf(stderr, "usage: %s [SECONDS >= 1] [THREADS 1..%d]\n", argv[0], MAXT);
        return 2;
    }
    shadow = mmap(NULL, SLOTS * SLOT, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    traffic = mmap(NULL, TRAFFIC, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (shadow == MAP_FAILED || traffic == MAP_FAILED) {
        perror("machine_check: mmap");
        return 2;
    }
    for (int i = 0; i < SLOTS; i++)
        pthread_mutex_init(&slot[i].mu, NULL);
    pthread_t th[MAXT];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    for (int k = 0; k < secs && atomic_load(&lost) == 0; k++) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    printf("machine_check: %ld slot writes, %ld slots dropped, %ld found changed\n",
           atomic_load(&ops), atomic_load(&drops), atomic_load(&lost));
    return atomic_load(&lost) != 0;
}
