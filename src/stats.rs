//! Statistics: process-wide counters kept on slow paths only (the fast paths
//! count nothing), and the figures mallinfo/mallinfo2/malloc_stats report.
//! Calls the report layer only.

use crate::report::Msg;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// SuperSlabs mapped (in use or cached).
pub static SS_MAPPED: AtomicUsize = AtomicUsize::new(0);
/// Empty SuperSlabs in the global cache.
pub static SS_CACHED: AtomicUsize = AtomicUsize::new(0);
/// Bytes of spans assigned to a size class.
pub static SPAN_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Live large blocks and their mapped bytes.
pub static LARGE_COUNT: AtomicUsize = AtomicUsize::new(0);
pub static LARGE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Freed large blocks kept mapped for reuse, and their bytes.
pub static LARGE_CACHED: AtomicUsize = AtomicUsize::new(0);
pub static LARGE_CACHED_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Bytes returned to the OS with MADV_DONTNEED so far.
pub static PURGED_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Thread heaps created (they are pooled, never freed).
pub static HEAPS: AtomicUsize = AtomicUsize::new(0);

/// A snapshot in glibc's mallinfo2 terms.
#[derive(Clone, Copy, Default)]
pub struct Snapshot {
    /// Bytes of SuperSlabs mapped.
    pub arena: usize,
    /// SuperSlabs mapped.
    pub superslabs: usize,
    /// Live large blocks.
    pub hblks: usize,
    /// Bytes mapped for live large blocks.
    pub hblkhd: usize,
    /// Bytes of spans in use by size classes (an upper bound of small/mid
    /// bytes in use).
    pub uordblks: usize,
    /// Bytes of SuperSlabs not assigned to any span, plus cached large blocks.
    pub fordblks: usize,
}

pub fn snapshot() -> Snapshot {
    let superslabs = SS_MAPPED.load(Relaxed);
    let arena = superslabs * crate::superslab::SS_SIZE;
    let spans = SPAN_BYTES.load(Relaxed);
    Snapshot {
        arena,
        superslabs,
        hblks: LARGE_COUNT.load(Relaxed),
        hblkhd: LARGE_BYTES.load(Relaxed),
        uordblks: spans,
        fordblks: arena.saturating_sub(spans) + LARGE_CACHED_BYTES.load(Relaxed),
    }
}

/// malloc_stats(): a short report on stderr.
pub fn print() {
    let s = snapshot();
    let line = |name: &str, v: usize| {
        let mut m = Msg::new();
        m.s("hakmem: ").s(name).s(" ").dec(v as u64);
        m.emit();
    };
    line("superslabs mapped:       ", s.superslabs);
    line("superslabs cached:       ", SS_CACHED.load(Relaxed));
    line("superslab bytes:         ", s.arena);
    line("span bytes in use:       ", s.uordblks);
    line("large blocks live:       ", s.hblks);
    line("large bytes live:        ", s.hblkhd);
    line("large blocks cached:     ", LARGE_CACHED.load(Relaxed));
    line("bytes purged to the OS:  ", PURGED_BYTES.load(Relaxed));
    line("thread heaps:            ", HEAPS.load(Relaxed));
}
