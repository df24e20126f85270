/* hakmem's one thread-local slot, in the initial-exec TLS model.
 *
 * Rust cannot choose the TLS model of its own thread locals, and from a cdylib
 * they use general-dynamic TLS: a __tls_get_addr call per access. This slot is
 * initial-exec: Rust reads it with a GOTTPOFF load and an %fs-relative load
 * (see src/tls.rs). Its initial value is the static empty heap, so the malloc
 * fast path needs no "initialised?" test: the empty heap's lists are empty and
 * the first call falls into the slow path, which sets the thread up. */
extern char hakmem_empty_heap[];

__thread __attribute__((tls_model("initial-exec"))) void *hakmem_tls_heap = hakmem_empty_heap;

/* Portable accessors for targets where src/tls.rs has no inline assembly. */
void *hakmem_tls_get(void) { return hakmem_tls_heap; }
void hakmem_tls_set(void *heap) { hakmem_tls_heap = heap; }
/* The slot's own address: unique per live thread (tls.rs thread_pointer). */
void *hakmem_tls_addr(void) { return &hakmem_tls_heap; }

/* The registry's table: one byte per 2 MiB of the 47-bit user address space
 * (64 MiB of zero-filled .bss; only pages covering hakmem's mappings are ever
 * touched). Defined in C so the zero image costs nothing at compile time.
 * Hidden: only this library reads it. See src/registry.rs. */
__attribute__((visibility("hidden"))) unsigned char hakmem_registry[1UL << 26];
