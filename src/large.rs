//! Large blocks (above 256 KiB, or aligned beyond 64 KiB): one mapping each,
//! aligned to 2 MiB so the registry finds the header at the chunk start.
//!
//! The header (64 bytes at the mapping's start) holds a magic, the mapping's
//! length, the user offset, the requested size and the block state, which a
//! double free finds already FREED. Freed blocks wait in a small cache
//! (`HAKMEM_LARGE_CACHE_MB`, at most `HAKMEM_PURGE_DELAY_MS` long) so a loop
//! that allocates and frees big buffers does not map and fault them in each
//! time: a cached mapping longer than a request is cut at a chunk boundary
//! (the rest cached on its own), a shorter one grown with mremap, so its
//! resident pages serve the next blocks. realloc grows in place with mremap
//! or moves the pages with mremap (no copy). Registry entries go before the
//! range they describe is unmapped or moved away, never after (another
//! thread may map and register it at once). May call: os, registry, sync,
//! config, stats, report.

use crate::config;
use crate::os::{self, PAGE};
use crate::registry::{self, CHUNK_SIZE};
use crate::report::misuse;
use crate::stats;
use crate::sync::{Racy, SpinLock};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicUsize, Ordering::*};

const MAGIC: usize = 0x4841_4b4d_4c41_5247; // "HAKMLARG"
const LIVE: usize = 0x4c49_5645;
const FREED: usize = 0x4652_4545;
const HEADER: usize = 64;
const CACHE_ENTRIES: usize = 16;

/// The guard page every large mapping ends with in secure mode (the mode is
/// fixed before the first large block: `alloc` reads the configuration).
fn guard_len() -> usize {
    if config::secure() {
        PAGE
    } else {
        0
    }
}

/// Length of a mapping that holds `size` bytes at offset `off`: page-rounded,
/// plus the guard page. None when that overflows or no address space could
/// hold it.
fn mapping_len(size: usize, off: usize) -> Option<usize> {
    size.checked_add(off)
        .and_then(|n| os::round_up(n, PAGE))
        .and_then(|n| n.checked_add(guard_len()))
        .filter(|&n| n <= isize::MAX as usize / 2)
}

#[repr(C, align(64))]
struct Header {
    magic: usize,
    map_len: usize,
    user_off: usize,
    size: usize,
    state: AtomicUsize,
    next: *mut Header,
    freed_at: u64,
}

const _: () = assert!(core::mem::size_of::<Header>() == HEADER);

pub static LOCK: SpinLock = SpinLock::new();
/// Freed blocks kept for reuse, newest first (under LOCK).
static CACHE: Racy<*mut Header> = Racy::new(null_mut());

fn register(base: usize, len: usize) {
    registry::set(base, len, registry::LARGE, registry::LARGE_TAIL);
}

/// A large block of `size` bytes aligned to `align` (0: 16). With `zero`,
/// its contents are zero. Null with errno ENOMEM on failure.
pub fn alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    alloc_with(size, align, zero, false)
}

/// A large block for realloc, which moves a smaller block up to `size`:
/// one reused from the cache keeps all its resident pages (the block is
/// growing, and a purged page would fault back in as it does).
pub fn alloc_growing(size: usize) -> *mut u8 {
    alloc_with(size, 0, false, true)
}

fn alloc_with(size: usize, align: usize, zero: bool, growing: bool) -> *mut u8 {
    config::init(); // a large block can be the process' first allocation
    let user_off = align.max(HEADER);
    let guard = guard_len();
    // At least one byte, so the user pointer lies inside the mapping.
    let Some(need) = mapping_len(size.max(1), user_off) else {
        os::set_errno(libc::ENOMEM);
        return null_mut();
    };
    let map_align = align.max(CHUNK_SIZE);
    let (h, fresh) = match from_cache(need, map_align, growing) {
        Some(h) => (h, false),
        None => {
            let base = os::map_aligned(need, map_align);
            if base.is_null() {
                os::set_errno(libc::ENOMEM);
                return null_mut();
            }
            if guard != 0 && !os::guard((base as usize + need - guard) as *mut u8, true) {
                os::unmap(base, need);
                os::set_errno(libc::ENOMEM);
                return null_mut();
            }
            register(base as usize, need);
            let h = base as *mut Header;
            // SAFETY: a fresh mapping of at least one page.
            unsafe { (*h).map_len = need };
            (h, true)
        }
    };
    // SAFETY: `h` heads a mapping only this thread knows.
    unsafe {
        (*h).magic = MAGIC ^ h as usize;
        (*h).user_off = user_off;
        (*h).size = size;
        (*h).next = null_mut();
        (*h).state.store(LIVE, Release);
        stats::LARGE_COUNT.fetch_add(1, Relaxed);
        stats::LARGE_BYTES.fetch_add((*h).map_len, Relaxed);
        let p = (h as usize + user_off) as *mut u8;
        if zero && !fresh {
            core::ptr::write_bytes(p, 0, size);
        }
        p
    }
}

/// Best-fitting cached mapping of at least `need` bytes, aligned to `align`.
/// Whole chunks past the ones `need` takes, if at least one, are cut off
/// and cached on their own; otherwise a mapping more than twice as long
/// keeps its length (a block that grows later, as with realloc, then grows
/// in place) but its pages past twice `need` are purged first: they cost
/// address space, not memory, and a live block never pins more than twice
/// its size (or one chunk more). Except for a `growing` block (realloc's):
/// it keeps them, to grow into. With none long enough, the longest is
/// grown to `need` (`grow`): its resident pages are reused, only the rest
/// faults in.
fn from_cache(need: usize, align: usize, growing: bool) -> Option<*mut Header> {
    let (h, fits) = take_cached(need, align)?;
    if !fits {
        // SAFETY: `h` was unlinked from the cache: only this thread knows it.
        unsafe {
            let nh = grow(h, need, align);
            if nh.is_null() {
                unmap(h);
                return None;
            }
            return Some(nh);
        }
    }
    // SAFETY: `h` was unlinked from the cache: only this thread knows it.
    unsafe {
        let len = (*h).map_len;
        let cut = os::round_up(need, CHUNK_SIZE).unwrap_or(len);
        if guard_len() == 0 && cut.saturating_add(CHUNK_SIZE) <= len {
            // Whole chunks past what the block needs go back to the cache
            // as a mapping of their own, pages and all: the next request
            // that fits them faults nothing in. (A shorter tail stays with
            // the block; with guard pages, which end every mapping, the
            // tail is purged below instead.)
            let t = (h as usize + cut) as *mut Header;
            (*t).magic = MAGIC ^ t as usize;
            (*t).map_len = len - cut;
            (*t).user_off = HEADER;
            (*t).size = 0;
            (*t).state.store(FREED, Relaxed);
            (*t).freed_at = (*h).freed_at;
            register(t as usize, len - cut);
            (*h).map_len = cut;
            keep(t);
        } else if len / 2 > need && !growing {
            let tail = len - guard_len() - 2 * need;
            os::purge((h as usize + 2 * need) as *mut u8, tail);
            stats::PURGED_BYTES.fetch_add(tail, Relaxed);
        }
    }
    Some(h)
}

/// Unlink the cached mapping aligned to `align` that fits `need` best, and
/// true; or, with none long enough, the longest, and false.
fn take_cached(need: usize, align: usize) -> Option<(*mut Header, bool)> {
    let _g = LOCK.guard();
    // SAFETY: the cache list is only accessed under LOCK.
    unsafe {
        let mut best: *mut *mut Header = null_mut();
        let mut longest: *mut *mut Header = null_mut();
        let mut link: *mut *mut Header = CACHE.get();
        while !(*link).is_null() {
            let h = *link;
            let len = (*h).map_len;
            if (h as usize).is_multiple_of(align) {
                if len >= need && (best.is_null() || len < (**best).map_len) {
                    best = link;
                }
                if longest.is_null() || len > (**longest).map_len {
                    longest = link;
                }
            }
            link = &raw mut (*h).next;
        }
        let fits = !best.is_null();
        if !fits {
            best = longest;
        }
        if best.is_null() {
            return None;
        }
        let h = *best;
        *best = (*h).next;
        stats::LARGE_CACHED.fetch_sub(1, Relaxed);
        stats::LARGE_CACHED_BYTES.fetch_sub((*h).map_len, Relaxed);
        Some((h, fits))
    }
}

/// The header of the live large block `a`, or a misuse report.
unsafe fn check(a: usize, op: &str) -> *mut Header {
    let base = if registry::kind(a) == registry::LARGE {
        a & !(CHUNK_SIZE - 1)
    } else {
        registry::large_head(a)
    };
    let h = base as *mut Header;
    // SAFETY: the registry says a large mapping starts at `base`.
    unsafe {
        if registry::kind(base) != registry::LARGE || (*h).magic != MAGIC ^ base {
            misuse(op, a, "pointer not allocated by hakmem", 0);
        }
        if a != base + (*h).user_off {
            misuse(op, a, "pointer into the middle of a block", (*h).size);
        }
        if (*h).state.load(Acquire) != LIVE {
            if op == "free" {
                misuse(op, a, "double free", (*h).size);
            }
            misuse(op, a, "block already freed", (*h).size);
        }
        h
    }
}

/// Free the large block at `a` (validated here).
pub unsafe fn free(a: usize, op: &str) {
    // SAFETY: `check` validated the header.
    unsafe {
        let h = check(a, op);
        if (*h)
            .state
            .compare_exchange(LIVE, FREED, AcqRel, Acquire)
            .is_err()
        {
            misuse(op, a, "double free", (*h).size);
        }
        stats::LARGE_COUNT.fetch_sub(1, Relaxed);
        stats::LARGE_BYTES.fetch_sub((*h).map_len, Relaxed);
        (*h).freed_at = os::now_ms();
        keep(h);
    }
}

/// Put the freed mapping `h` in the cache, or unmap it: when the cache is
/// off (no purge delay) or `h` is over half its byte limit. Entries over
/// the limits go, oldest first.
unsafe fn keep(h: *mut Header) {
    // SAFETY: `h` heads a freed mapping only the caller knows.
    unsafe {
        let limit = config::LARGE_CACHE_MB.get().saturating_mul(1 << 20);
        if config::PURGE_DELAY_MS.get() > 0 && (*h).map_len <= limit / 2 {
            let mut evict = null_mut();
            {
                let _g = LOCK.guard();
                (*h).next = *CACHE.get();
                *CACHE.get() = h;
                stats::LARGE_CACHED.fetch_add(1, Relaxed);
                stats::LARGE_CACHED_BYTES.fetch_add((*h).map_len, Relaxed);
                // Over the limits: drop the oldest entries (the list's tail).
                let mut n = 0;
                let mut bytes = 0;
                let mut link: *mut *mut Header = CACHE.get();
                while !(*link).is_null() {
                    let e = *link;
                    n += 1;
                    bytes += (*e).map_len;
                    if n > CACHE_ENTRIES || bytes > limit {
                        *link = null_mut();
                        evict = e;
                        break;
                    }
                    link = &raw mut (*e).next;
                }
                let mut e = evict;
                while !e.is_null() {
                    stats::LARGE_CACHED.fetch_sub(1, Relaxed);
                    stats::LARGE_CACHED_BYTES.fetch_sub((*e).map_len, Relaxed);
                    e = (*e).next;
                }
            }
            unmap_list(evict);
        } else {
            unmap(h);
        }
    }
}

unsafe fn unmap(h: *mut Header) {
    // SAFETY: `h` is a large mapping no list references any more.
    unsafe {
        let len = (*h).map_len;
        (*h).magic = 0;
        registry::clear(h as usize, len);
        os::unmap(h.cast(), len);
    }
}

unsafe fn unmap_list(mut e: *mut Header) {
    while !e.is_null() {
        // SAFETY: entries were unlinked from the cache by the caller.
        unsafe {
            let next = (*e).next;
            unmap(e);
            e = next;
        }
    }
}

/// Unmap cached blocks freed longer than the purge delay ago (all of them
/// with `all`).
pub fn maintain(now: u64, all: bool) {
    let delay = config::PURGE_DELAY_MS.get() as u64;
    let mut evict: *mut Header = null_mut();
    {
        let _g = LOCK.guard();
        // SAFETY: under LOCK.
        unsafe {
            let mut link: *mut *mut Header = CACHE.get();
            while !(*link).is_null() {
                let e = *link;
                if all || now.saturating_sub((*e).freed_at) >= delay {
                    *link = (*e).next;
                    stats::LARGE_CACHED.fetch_sub(1, Relaxed);
                    stats::LARGE_CACHED_BYTES.fetch_sub((*e).map_len, Relaxed);
                    (*e).next = evict;
                    evict = e;
                } else {
                    link = &raw mut (*e).next;
                }
            }
        }
    }
    // SAFETY: unlinked above.
    unsafe { unmap_list(evict) };
}

/// Bytes usable at the live large block `a`.
pub unsafe fn usable(a: usize, op: &str) -> usize {
    // SAFETY: validated by `check`.
    unsafe {
        let h = check(a, op);
        (*h).map_len - guard_len() - (*h).user_off
    }
}

/// Resize the live large block `a` to `size` (> MID_MAX) in place or by
/// moving its pages. Null (errno ENOMEM) if it cannot; `a` stays valid.
pub unsafe fn realloc(a: usize, size: usize) -> *mut u8 {
    // SAFETY: validated by `check`; the mapping is ours to resize.
    unsafe {
        let h = check(a, "realloc");
        let base = h as usize;
        let off = (*h).user_off;
        let old = (*h).map_len;
        let guard = guard_len();
        let Some(need) = mapping_len(size, off) else {
            os::set_errno(libc::ENOMEM);
            return null_mut();
        };
        if need <= old {
            // Give memory back only when the block really shrinks (a block
            // reused from the cache may be far longer than a growing one).
            if need < old / 2 && size < (*h).size {
                // Give back the tail: whole chunks past the new end leave the
                // registry.
                // (The registry first: once unmapped, the range can be
                // another thread's new mapping, registered at once.)
                let keep_chunks_end = os::round_up(base + need, CHUNK_SIZE).unwrap_or(base + old);
                if keep_chunks_end < base + old {
                    registry::clear(keep_chunks_end, base + old - keep_chunks_end);
                }
                if guard != 0 {
                    os::guard((base + need - guard) as *mut u8, true);
                }
                os::unmap((base + need) as *mut u8, old - need);
                (*h).map_len = need;
                stats::LARGE_BYTES.fetch_sub(old - need, Relaxed);
            }
            (*h).size = size;
            return a as *mut u8;
        }
        // Grow by at least a quarter, so a block grown in small steps takes
        // a syscall per quarter, not per page (pages not written cost no
        // memory).
        let need = match os::round_up(need.max(old + old / 4), PAGE) {
            Some(n) if n <= isize::MAX as usize / 2 => n,
            _ => need,
        };
        let nh = grow(h, need, CHUNK_SIZE);
        if nh.is_null() {
            os::set_errno(libc::ENOMEM);
            return null_mut();
        }
        (*nh).size = size;
        stats::LARGE_BYTES.fetch_add(need - old, Relaxed);
        (nh as usize + off) as *mut u8
    }
}

/// Grow the mapping headed by `h` (page-rounded `need` > its length) with
/// mremap: in place when the address space after it is free, else by moving
/// its pages (no copy) to a new reservation aligned to `align` (at least
/// 2 MiB, and the block's own alignment). The registry and the header's
/// magic and length follow. The (maybe moved) header, or null with the
/// mapping unchanged.
unsafe fn grow(h: *mut Header, need: usize, align: usize) -> *mut Header {
    // SAFETY: `h` heads a mapping only the caller uses.
    unsafe {
        let base = h as usize;
        let old = (*h).map_len;
        let off = (*h).user_off;
        let guard = guard_len();
        // mremap needs one uniform mapping: lift the guard page while the
        // pages move, and put it back at the (new) end.
        let set_guard =
            |end: usize, on: bool| guard == 0 || os::guard((end - guard) as *mut u8, on);
        if !set_guard(base + old, false) {
            return null_mut();
        }
        if !os::remap(base as *mut u8, old, need, None).is_null() {
            set_guard(base + need, true);
            register(base, need);
            (*h).map_len = need;
            return h;
        }
        let align = if off > HEADER { off.max(align) } else { align };
        let target = os::map_aligned(need, align);
        if target.is_null() {
            set_guard(base + old, true);
            return null_mut();
        }
        // Forget the old range before the pages leave it: from then on it
        // can be another thread's new mapping, registered at once.
        registry::clear(base, old);
        let moved = os::remap(base as *mut u8, old, need, Some(target));
        if moved.is_null() {
            register(base, old);
            os::unmap(target, need);
            set_guard(base + old, true);
            return null_mut();
        }
        let nb = moved as usize;
        set_guard(nb + need, true);
        register(nb, need);
        let nh = nb as *mut Header;
        (*nh).magic = MAGIC ^ nb;
        (*nh).map_len = need;
        nh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    /// The cache is process-wide: one test at a time.
    fn serial() -> std::sync::MutexGuard<'static, ()> {
        static M: std::sync::Mutex<()> = std::sync::Mutex::new(());
        M.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn cached_mappings_are_cut_for_smaller_blocks_and_grown_for_bigger_ones() {
        let _s = serial();
        // Freed large blocks are kept (the purge delay is not 0 by default).
        assert!(config::PURGE_DELAY_MS.get() > 0 && guard_len() == 0);
        maintain(0, true); // an empty cache
                           // SAFETY: blocks allocated here, written within their sizes, freed once.
        unsafe {
            // A 10 MiB block, marked 5 MiB into its mapping, then freed.
            let big = alloc(10 * MIB, 0, false);
            assert!(!big.is_null());
            let base = big as usize - HEADER;
            *big.add(5 * MIB - HEADER) = 0xcd;
            free(big as usize, "free");
            // 3 MiB: the same mapping, cut after 4 MiB (whole chunks)...
            let a = alloc(3 * MIB, 0, false);
            assert_eq!(a, big);
            assert_eq!((*(base as *mut Header)).map_len, 4 * MIB);
            // ...and the 6 MiB after it serve the next block, pages and all.
            let b = alloc(5 * MIB, 0, false);
            assert_eq!(b as usize, base + 4 * MIB + HEADER);
            assert_eq!(*b.add(MIB - HEADER), 0xcd);
            free(a as usize, "free");
            free(b as usize, "free");
            maintain(0, true);

            // A 3 MiB block, marked at its end, freed; then 7 MiB: no cached
            // mapping is long enough, so the 3 MiB one grows (in place or
            // moved), its written pages with it.
            let c = alloc(3 * MIB, 0, false);
            *c.add(3 * MIB - 1) = 0xab;
            free(c as usize, "free");
            let d = alloc(7 * MIB, 0, false);
            assert!(!d.is_null());
            assert_eq!(*d.add(3 * MIB - 1), 0xab, "the cached pages were reused");
            assert!(usable(d as usize, "test") >= 7 * MIB);
            free(d as usize, "free");
            maintain(0, true);
        }
    }

    #[test]
    fn a_block_realloc_moves_up_keeps_the_cached_pages_it_may_grow_into() {
        let _s = serial();
        assert!(config::PURGE_DELAY_MS.get() > 0 && guard_len() == 0);
        let mark = 3 * MIB / 2;
        // SAFETY: blocks allocated here, used within their usable sizes,
        // freed once.
        unsafe {
            maintain(0, true);
            for growing in [true, false] {
                // A block of nearly 2 MiB, marked at 1.5 MiB, freed...
                let x = alloc(2 * MIB - 8192, 0, false);
                *x.add(mark) = 0xee;
                free(x as usize, "free");
                // ...and its mapping reused for 300 KiB.
                let p = if growing {
                    alloc_growing(300 << 10)
                } else {
                    alloc(300 << 10, 0, false)
                };
                assert_eq!(p, x);
                assert!(usable(p as usize, "test") > mark);
                // realloc's block keeps the page; any other has its pages
                // past twice its size purged (they read as zero again).
                assert_eq!(*p.add(mark), if growing { 0xee } else { 0 });
                free(p as usize, "free");
                maintain(0, true);
            }
        }
    }
}
