//! hakmem: a malloc replacement for C and C++ programs, in Rust.
//!
//! The layers, from the outside in (each module's doc says what it owns and
//! what it may call):
//!
//! | module | owns |
//! | --- | --- |
//! | `abi` | the C ABI: malloc, free, calloc, realloc, the aligned family, malloc_usable_size, mallinfo2, malloc_trim, ... |
//! | `api` | hakmem's own C API (include/hakmem.h) |
//! | `config` | the HAKMEM_* environment variables |
//! | `heap` | thread heaps: the Tiny (<= 1 KiB), Small-Mid (256 B - 1 KiB, HAKMEM_SMALLMID=1) and Mid (<= 256 KiB) front ends, remote frees, purging, the thread life cycle, fork |
//! | `sizeclass` | size classes and span geometry |
//! | `superslab` | the SuperSlab backend: 2 MiB aligned regions of 64 KiB slabs, the global cache of empty SuperSlabs |
//! | `arena` | the address range SuperSlabs come from, and its address -> span table for the free fast path |
//! | `large` | blocks above 256 KiB: one mapping each, with a small cache |
//! | `registry` | address -> SuperSlab / large block / foreign, in O(1) |
//! | `stats` | counters and the mallinfo figures |
//! | `os` | mmap, munmap, madvise, mremap, clock, randomness, errno |
//! | `tls` | the initial-exec thread-local heap pointer (with src/tls.c) |
//! | `sync`, `meta`, `report` | spin lock, metadata arena, messages |
//!
//! Nothing reachable from malloc/free allocates, formats or unwinds: the
//! library is built with `panic = "abort"` and reports with `write(2)`.

#![allow(clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod api;
pub mod arena;
pub mod config;
pub mod heap;
pub mod large;
pub mod meta;
pub mod os;
pub mod registry;
pub mod report;
pub mod sizeclass;
pub mod stats;
pub mod superslab;
pub mod sync;
pub mod tls;

/// The library constructor: read the HAKMEM_* variables (malloc may already
/// have done so if another constructor allocated first).
#[ctor::ctor(unsafe)]
fn hakmem_init() {
    config::init();
    if config::STATS.get() == 1 {
        extern "C" fn at_exit() {
            stats::print();
        }
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(at_exit) };
    }
}
