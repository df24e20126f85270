//! The SuperSlab backend: 2 MiB regions aligned to their size, carved into
//! 64 KiB slabs; a span of one or more slabs serves one size class.
//!
//! The header (slab 0) holds a magic, the owning heap, a bitmap of free slabs
//! and of free slabs whose pages may still be resident ("dirty"), a span-head
//! table (slab index -> descriptor of the span covering it, so `free` finds a
//! block's metadata with one mask and one load) and the 32 slab descriptors.
//! A freed span returns to its SuperSlab's bitmap, where any class can take
//! it; dirty free slabs are purged with MADV_DONTNEED after
//! `HAKMEM_PURGE_DELAY_MS`. Empty SuperSlabs go to a global cache, bounded by
//! `HAKMEM_SUPERSLAB_MAX_CACHED`, `HAKMEM_SUPERSLAB_MAX_MEMORY_MB` and
//! `HAKMEM_SUPERSLAB_TTL_SEC`, before they are unmapped.
//!
//! A SuperSlab's 2 MiB come from the arena (`arena`, whose table mirrors
//! every `span_head` so that free finds a span with one load), or from a
//! mapping of its own when the arena cannot serve.
//!
//! May call: os, arena, registry, sync, stats, config, sizeclass.

use crate::config;
use crate::heap::{Heap, Hot};
use crate::os;
use crate::registry;
use crate::sizeclass::{ALIGNED_MAX, INFO, SLAB_SHIFT, SLAB_SIZE};
use crate::stats;
use crate::sync::{Racy, SpinLock};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering::Relaxed};

pub const SS_SHIFT: usize = 21;
pub const SS_SIZE: usize = 1 << SS_SHIFT;
pub const SLABS: usize = SS_SIZE / SLAB_SIZE;
/// Slabs 1..31 carry blocks; slab 0 is the header.
pub const USABLE: u32 = !1u32;
const MAGIC: usize = 0x4841_4b4d_5353_4c42; // "HAKMSSLB"

/// A free block: the free-list link, then the "free" cookie that tells a
/// double free (`heap::cookie`: the address of its span's hot list, in
/// secure mode `address ^ secret`; set by free, cleared by malloc).
#[repr(C)]
pub struct Block {
    pub next: *mut Block,
    pub cookie: usize,
}

/// A span's descriptor. The first cache line is what the fast paths read.
#[repr(C, align(64))]
pub struct Slab {
    /// The owning heap's hot list for this span's class, where the owner's
    /// fast-path frees go (read only after the owner test passes).
    pub hot: *mut Hot,
    /// Blocks given back to the span (the hot list's overflow, the owner's
    /// slow-path frees, collected remote frees) since `free` was last
    /// refilled.
    pub local_free: *mut Block,
    /// The origin of the block-start test: 0 for a span of a class up to
    /// `sizeclass::ALIGNED_MAX`, whose blocks lie at multiples of their size
    /// (`start` is rounded up to one), so that the free fast path multiplies
    /// the address itself; `start` for the bigger classes.
    pub org: usize,
    /// `((start - org) / size + carved) * div_e` (`sizeclass::ClassInfo`):
    /// an address `a` of the span is a carved block iff
    /// `(a - org) * div_m < lim`. Zero while the span is free, and always in
    /// secure mode (so every free misses the fast path).
    pub lim: u64,
    /// See `sizeclass::ClassInfo::div_m`.
    pub div_m: u64,
    /// The thread pointer (`tls::thread_pointer`) of the thread that owns
    /// the span's heap, bit 0 set when the class's hot lists are counted
    /// (`heap::span_tp`), or 0: the free fast path's owner test, one load and
    /// one compare with `%fs:0` (two for a counted span). Never a thread that does not own the heap:
    /// it is set when the owner takes the span or frees into it on the slow
    /// path, and cleared in all the heap's SuperSlabs before the heap changes
    /// hands (`heap::disown`), so a thread that reuses an exited thread's
    /// TCB never passes for the owner.
    pub tp: usize,
    /// `used - wake` (wrapping), where `used` (`Slab::used`) counts the
    /// carved blocks that are not on `local_free`: those handed out, plus
    /// those on the heap's hot list (and on `free`, which is empty but
    /// during a refill). A block given back to the span (`heap::push_local`)
    /// takes one off and calls `heap::settle` when it reaches zero; malloc
    /// leaves it alone (carving and `take_local` add whole batches). One
    /// counter, so giving a block back is a decrement and a jump, and
    /// neither fast path touches it.
    pub until_wake: u32,
    /// The `used` at which a free calls `heap::settle`: 0 for a slab in use
    /// (it became empty), somewhat below the count of blocks out for a full
    /// slab (it has gathered enough free blocks to be worth allocating from
    /// again), u32::MAX for the current slab (never settled).
    pub wake: u32,
    /// 1 while the slab is exhausted and in no list.
    pub full: u8,
    pub class: u8,
    pub nslabs: u8,
    pub index: u8,
    /// Blocks carved from the span so far, of `count`.
    pub carved: u16,
    pub count: u16,
    // ---- cold ----
    /// Blocks ready to hand out: the batch a refill moves onto the heap's
    /// hot list (secure mode pops them here, one at a time).
    pub free: *mut Block,
    /// The owning thread heap.
    pub heap: *mut Heap,
    pub size: u32,
    pub in_partial: u32,
    pub next: *mut Slab,
    pub prev: *mut Slab,
    /// When this slab was last freed (ms): it is purged once it has stayed
    /// free for the purge delay, so a span that is reused soon never is.
    pub freed_at: u64,
    /// Address of the first block: the span's first byte, or for a class up
    /// to `sizeclass::ALIGNED_MAX` the first multiple of the block size from
    /// there.
    pub start: usize,
}

#[repr(C, align(64))]
pub struct SuperSlab {
    pub magic: usize,
    pub heap: *mut Heap,
    pub free_mask: u32,
    pub dirty_mask: u32,
    /// Links in the owner's available list or the global cache.
    pub next: *mut SuperSlab,
    pub prev: *mut SuperSlab,
    /// The owning heap's list of all its SuperSlabs (`heap::own`): written
    /// by the owner only, each change one release store, so that a fork
    /// child can walk it whatever the other threads were doing.
    pub owned_next: AtomicPtr<SuperSlab>,
    pub owned_prev: *mut SuperSlab,
    /// The owner's avail bin this SuperSlab is filed in (0: none).
    pub bin: u32,
    pub cached_at: u64,
    pub span_head: [*mut Slab; SLABS],
    pub slabs: [Slab; SLABS],
}

const _: () = assert!(core::mem::size_of::<SuperSlab>() <= SLAB_SIZE);

impl Slab {
    /// Carved blocks not on `local_free` (see `until_wake`).
    #[inline]
    pub fn used(&self) -> u32 {
        self.until_wake.wrapping_add(self.wake)
    }

    /// A block came back to the slab's lists (`used - 1`): true when `used`
    /// has reached the `wake` mark, so the caller must call `heap::settle`.
    #[inline(always)]
    pub fn put_back(&mut self) -> bool {
        self.until_wake = self.until_wake.wrapping_sub(1);
        self.until_wake == 0
    }

    /// `n` newly carved blocks went onto `free` (`used + n`).
    #[inline]
    pub fn add_carved(&mut self, n: u32) {
        self.until_wake = self.until_wake.wrapping_add(n);
    }

    /// Set `used` to `u`, keeping `wake`.
    #[inline]
    pub fn set_used(&mut self, u: u32) {
        self.until_wake = u.wrapping_sub(self.wake);
    }

    /// Make a free that brings `used` down to `w` call `heap::settle`.
    #[inline]
    pub fn set_wake(&mut self, w: u32) {
        let u = self.used();
        self.wake = w;
        self.until_wake = u.wrapping_sub(w);
    }

    /// A slab that serves nothing: every pop finds `free` null, every bound
    /// check fails. The empty heap's lists all point at it.
    pub const EMPTY: Slab = Slab {
        hot: null_mut(),
        local_free: null_mut(),
        org: 0,
        lim: 0,
        div_m: 0,
        tp: 0,
        until_wake: 0,
        wake: 0,
        full: 0,
        class: 0,
        nslabs: 0,
        index: 0,
        carved: 0,
        count: 0,
        free: null_mut(),
        heap: null_mut(),
        size: 0,
        in_partial: 0,
        next: null_mut(),
        prev: null_mut(),
        freed_at: 0,
        start: 0,
    };
}

impl Slab {
    /// Bytes carved so far (0 while the span is free): an address at
    /// `start + off` is a block iff `off < carved_bytes()` and `off % size == 0`.
    #[inline]
    pub fn carved_bytes(&self) -> usize {
        self.carved as usize * self.size as usize
    }
}

/// Slab `i` of `ss` is covered by span `s` (in the header and in the
/// arena's table).
#[inline]
unsafe fn set_head(ss: *mut SuperSlab, i: usize, s: *mut Slab) {
    // SAFETY: the caller holds `ss`.
    unsafe { (*ss).span_head[i] = s };
    crate::arena::set(ss as usize + (i << SLAB_SHIFT), s);
}

/// The SuperSlab containing address `a` (valid only if the registry says so).
#[inline(always)]
pub fn of(a: usize) -> *mut SuperSlab {
    (a & !(SS_SIZE - 1)) as *mut SuperSlab
}

/// The span descriptor covering address `a` of SuperSlab `ss`.
#[inline(always)]
pub unsafe fn slab_of(ss: *mut SuperSlab, a: usize) -> *mut Slab {
    // SAFETY: caller guarantees `ss` is a live SuperSlab header; the index is
    // masked to 0..31.
    unsafe { (*ss).span_head[(a >> SLAB_SHIFT) & (SLABS - 1)] }
}

/// True if `ss` carries hakmem's magic for its own address.
pub unsafe fn valid(ss: *mut SuperSlab) -> bool {
    // SAFETY: caller checked the registry, so the header is mapped.
    unsafe { (*ss).magic == MAGIC ^ ss as usize }
}

/// The mask of `n` slabs starting at `i`.
#[inline]
pub fn span_bits(i: usize, n: usize) -> u32 {
    (((1u64 << n) - 1) << i) as u32
}

/// Lowest index of `n` consecutive set bits in `mask`.
pub fn find_run(mask: u32, n: usize) -> Option<usize> {
    let mut m = mask;
    for _ in 1..n {
        m &= m >> 1;
    }
    (m != 0).then(|| m.trailing_zeros() as usize)
}

/// Initialise a freshly mapped (or cached) SuperSlab for `heap`.
unsafe fn init_header(ss: *mut SuperSlab, fresh: bool) {
    // SAFETY: `ss` is a 2 MiB mapping hakmem owns and nobody else uses yet.
    unsafe {
        if fresh {
            (*ss).magic = MAGIC ^ ss as usize;
            (*ss).free_mask = USABLE;
            (*ss).dirty_mask = 0;
            for i in 0..SLABS {
                let s = &raw mut (*ss).slabs[i];
                s.write(Slab::EMPTY);
                (*s).index = i as u8;
                set_head(ss, i, s);
            }
        }
        (*ss).heap = null_mut();
        (*ss).next = null_mut();
        (*ss).prev = null_mut();
        (*ss).owned_next = AtomicPtr::new(null_mut());
        (*ss).owned_prev = null_mut();
        (*ss).bin = 0;
        // (Its spans are all free; no owner test may pass on a stale one.)
        for i in 0..SLABS {
            (*ss).slabs[i].tp = 0;
        }
    }
}

/// Carve span `[i, i+n)` of `ss` for class `c`, owned by `heap`.
pub unsafe fn init_span(ss: *mut SuperSlab, i: usize, c: usize, heap: *mut Heap) -> *mut Slab {
    let info = &INFO[c];
    let n = info.slabs as usize;
    let size = info.size as usize;
    let first = ss as usize + (i << SLAB_SHIFT);
    // Blocks of a class up to ALIGNED_MAX start at a multiple of their size
    // (at most size - 16 bytes in), so that the free fast path's block-start
    // test needs no subtraction (`Slab::org`).
    let (org, start) = if size <= ALIGNED_MAX {
        (0, first.next_multiple_of(size))
    } else {
        (first, first)
    };
    // Secure mode: blocks stop short of the guard page that ends the
    // SuperSlab (and `lim` stays 0: see heap::carve).
    let end = first + n * SLAB_SIZE
        - if config::secure() && i + n == SLABS {
            os::PAGE
        } else {
            0
        };
    let count = ((end - start) / size) as u16;
    // SAFETY: the caller found slabs i..i+n free in `ss`, which its heap owns.
    unsafe {
        let s = &raw mut (*ss).slabs[i];
        *s = Slab {
            // SAFETY: a non-null `heap` is the caller's own.
            hot: if heap.is_null() {
                null_mut()
            } else {
                &raw mut (*heap).hot[c]
            },
            local_free: null_mut(),
            org,
            lim: 0,
            div_m: info.div_m,
            // SAFETY: a non-null `heap` is the caller's own.
            tp: if heap.is_null() {
                0
            } else {
                crate::heap::span_tp(heap, c)
            },
            until_wake: 0,
            wake: 0,
            full: 0,
            class: c as u8,
            nslabs: n as u8,
            index: i as u8,
            carved: 0,
            count,
            free: null_mut(),
            heap,
            size: info.size,
            in_partial: 0,
            next: null_mut(),
            prev: null_mut(),
            freed_at: 0,
            start,
        };
        for j in i..i + n {
            set_head(ss, j, s);
        }
        let bits = span_bits(i, n);
        (*ss).free_mask &= !bits;
        (*ss).dirty_mask &= !bits;
        stats::SPAN_BYTES.fetch_add(n * SLAB_SIZE, Relaxed);
        s
    }
}

/// Return span `s` to its SuperSlab's free bitmap (pages stay dirty until
/// purged). Stale pointers into it now fail validation (`len == 0`).
pub unsafe fn free_span(ss: *mut SuperSlab, s: *mut Slab, now: u64) {
    // SAFETY: `s` is a span of `ss` with no live block, owned by the caller.
    unsafe {
        let i = (*s).index as usize;
        let n = (*s).nslabs as usize;
        for j in i..i + n {
            let d = &raw mut (*ss).slabs[j];
            if j != i {
                (*d).lim = 0;
                (*d).carved = 0;
            }
            (*d).freed_at = now;
            set_head(ss, j, d);
        }
        (*s).lim = 0;
        (*s).free = null_mut();
        (*s).local_free = null_mut();
        (*s).until_wake = 0;
        (*s).wake = 0;
        (*s).carved = 0;
        (*s).nslabs = 1;
        let bits = span_bits(i, n);
        (*ss).free_mask |= bits;
        (*ss).dirty_mask |= bits;
        stats::SPAN_BYTES.fetch_sub(n * SLAB_SIZE, Relaxed);
    }
}

/// MADV_DONTNEED the dirty free slabs of `ss` that have been free for at
/// least `delay` ms (all of them with `delay == 0`), in maximal runs.
/// Returns when the next remaining dirty slab is due (0: none left).
pub unsafe fn purge(ss: *mut SuperSlab, now: u64, delay: u64) -> u64 {
    // SAFETY: dirty slabs are free: no block lives there.
    unsafe {
        let mut due = 0u64;
        let mut m = 0u32;
        let mut d = (*ss).dirty_mask & (*ss).free_mask;
        while d != 0 {
            let i = d.trailing_zeros() as usize;
            d &= d - 1;
            let t = (*ss).slabs[i].freed_at + delay;
            if delay == 0 || t <= now {
                m |= 1 << i;
            } else if due == 0 || t < due {
                due = t;
            }
        }
        purge_slabs(ss, m);
        due
    }
}

/// MADV_DONTNEED the free slabs of mask `m` of `ss`, in maximal runs, and
/// mark them clean.
unsafe fn purge_slabs(ss: *mut SuperSlab, mut m: u32) {
    // SAFETY: the caller passes free slabs only: no block lives there.
    unsafe {
        (*ss).dirty_mask &= !m;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            let run = (!(m >> i)).trailing_zeros() as usize;
            os::purge(
                (ss as usize + (i << SLAB_SHIFT)) as *mut u8,
                run << SLAB_SHIFT,
            );
            stats::PURGED_BYTES.fetch_add(run << SLAB_SHIFT, Relaxed);
            m &= !span_bits(i, run);
        }
    }
}

/// MADV_DONTNEED the free dirty slabs `[i, i+n)` of `ss` now.
pub unsafe fn purge_run(ss: *mut SuperSlab, i: usize, n: usize) {
    // SAFETY: the slabs are free: no block lives there.
    unsafe {
        let bits = span_bits(i, n) & (*ss).dirty_mask & (*ss).free_mask;
        if bits == 0 {
            return;
        }
        purge_slabs(ss, bits);
    }
}

/// True when no span of `ss` is in use.
#[inline]
pub unsafe fn is_empty(ss: *mut SuperSlab) -> bool {
    // SAFETY: reading the owner's header.
    unsafe { (*ss).free_mask == USABLE }
}

// ---------------------------------------------------------------------------
// The global cache of empty SuperSlabs.

struct Cache {
    /// Most recently released first (warmest); evictions take the tail.
    head: *mut SuperSlab,
    tail: *mut SuperSlab,
    count: usize,
}

pub static CACHE_LOCK: SpinLock = SpinLock::new();
static CACHE: Racy<Cache> = Racy::new(Cache {
    head: null_mut(),
    tail: null_mut(),
    count: 0,
});

unsafe fn cache_unlink(c: &mut Cache, ss: *mut SuperSlab) {
    // SAFETY: `ss` is in the cache list; CACHE_LOCK is held by the caller.
    unsafe {
        if (*ss).prev.is_null() {
            c.head = (*ss).next;
        } else {
            (*(*ss).prev).next = (*ss).next;
        }
        if (*ss).next.is_null() {
            c.tail = (*ss).prev;
        } else {
            (*(*ss).next).prev = (*ss).prev;
        }
        (*ss).next = null_mut();
        (*ss).prev = null_mut();
        c.count -= 1;
    }
}

/// An empty SuperSlab for `heap`: the warmest cached one, else a new mapping.
/// Null when the OS refuses memory.
pub fn acquire(heap: *mut Heap) -> *mut SuperSlab {
    let ss = {
        let _g = CACHE_LOCK.guard();
        // SAFETY: CACHE is only accessed under CACHE_LOCK.
        let c = unsafe { &mut *CACHE.get() };
        let ss = c.head;
        if !ss.is_null() {
            // SAFETY: `ss` heads the cache list.
            unsafe { cache_unlink(c, ss) };
            stats::SS_CACHED.fetch_sub(1, Relaxed);
        }
        ss
    };
    let ss = if ss.is_null() { map_new() } else { ss };
    if !ss.is_null() {
        // SAFETY: `ss` is ours alone now.
        unsafe {
            init_header(ss, false);
            (*ss).heap = heap;
        }
    }
    ss
}

fn map_new() -> *mut SuperSlab {
    let mut p = crate::arena::chunk() as *mut SuperSlab;
    if p.is_null() {
        p = os::map_aligned(SS_SIZE, SS_SIZE) as *mut SuperSlab;
    }
    if p.is_null() {
        return p;
    }
    // SAFETY: a fresh 2 MiB mapping.
    unsafe { init_header(p, true) };
    // Secure mode: the last page is a guard; an overflow off the end of the
    // last block faults instead of reaching the next mapping.
    if config::secure() && !os::guard((p as usize + SS_SIZE - os::PAGE) as *mut u8, true) {
        give_back(p);
        return null_mut();
    }
    registry::set(
        p as usize,
        SS_SIZE,
        registry::SUPERSLAB,
        registry::SUPERSLAB,
    );
    stats::SS_MAPPED.fetch_add(1, Relaxed);
    p
}

/// Return the 2 MiB at `ss` to the arena, or to the kernel.
fn give_back(ss: *mut SuperSlab) {
    if !crate::arena::give_back(ss.cast()) {
        os::unmap(ss.cast(), SS_SIZE);
    }
}

fn unmap(ss: *mut SuperSlab) {
    registry::clear(ss as usize, SS_SIZE);
    // SAFETY: the header is no longer reachable from any list; clear the
    // magic so a stale pointer can never validate.
    unsafe { (*ss).magic = 0 };
    give_back(ss);
    stats::SS_MAPPED.fetch_sub(1, Relaxed);
}

/// Put an empty SuperSlab into the cache; unmap what the limits evict.
///
/// # Safety
/// `ss` is a live SuperSlab with no span in use, in no heap's bins, that the
/// caller holds exclusively.
pub unsafe fn release(ss: *mut SuperSlab, now: u64) {
    let mut evict: *mut SuperSlab = null_mut();
    {
        let _g = CACHE_LOCK.guard();
        // SAFETY: under CACHE_LOCK; `ss` is empty and no longer owned.
        unsafe {
            let c = &mut *CACHE.get();
            (*ss).heap = null_mut();
            (*ss).bin = 0;
            (*ss).cached_at = now;
            (*ss).prev = null_mut();
            (*ss).next = c.head;
            if !c.head.is_null() {
                (*c.head).prev = ss;
            } else {
                c.tail = ss;
            }
            c.head = ss;
            c.count += 1;
            stats::SS_CACHED.fetch_add(1, Relaxed);
            let max = config::MAX_CACHED
                .get()
                .min(config::MAX_MEMORY_MB.get().saturating_mul(1 << 20) / SS_SIZE);
            while c.count > max {
                let t = c.tail;
                cache_unlink(c, t);
                stats::SS_CACHED.fetch_sub(1, Relaxed);
                (*t).next = evict;
                evict = t;
            }
        }
    }
    unmap_list(evict);
}

fn unmap_list(mut l: *mut SuperSlab) {
    while !l.is_null() {
        // SAFETY: `l` is an evicted SuperSlab only this thread knows.
        let next = unsafe { (*l).next };
        unmap(l);
        l = next;
    }
}

/// Purge cached SuperSlabs dirty for longer than the purge delay and unmap
/// those cached for longer than the TTL. With `all`, purge and apply the
/// TTL as if it had passed (malloc_trim).
pub fn maintain(now: u64, all: bool) {
    let delay = config::PURGE_DELAY_MS.get() as u64;
    let ttl = config::TTL_SEC.get() as u64 * 1000;
    let mut evict: *mut SuperSlab = null_mut();
    {
        let _g = CACHE_LOCK.guard();
        // SAFETY: under CACHE_LOCK; cached SuperSlabs belong to no heap.
        unsafe {
            let c = &mut *CACHE.get();
            let mut ss = c.head;
            while !ss.is_null() {
                let next = (*ss).next;
                if all || now.saturating_sub((*ss).cached_at) >= ttl {
                    cache_unlink(c, ss);
                    stats::SS_CACHED.fetch_sub(1, Relaxed);
                    (*ss).next = evict;
                    evict = ss;
                } else if (*ss).dirty_mask != 0 {
                    purge(ss, now, delay);
                }
                ss = next;
            }
        }
    }
    unmap_list(evict);
}

/// Map `n` SuperSlabs into the cache now (HAKMEM_PREWARM_SUPERSLABS).
pub fn prewarm(n: usize) {
    let now = os::now_ms();
    for _ in 0..n {
        let ss = map_new();
        if ss.is_null() {
            break;
        }
        // SAFETY: a fresh SuperSlab only this thread knows.
        unsafe { release(ss, now) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_runs_of_free_slabs() {
        assert_eq!(find_run(USABLE, 1), Some(1));
        assert_eq!(find_run(USABLE, 16), Some(1));
        assert_eq!(find_run(USABLE, 31), Some(1));
        assert_eq!(find_run(USABLE, 32), None);
        assert_eq!(find_run(0b1011_0110, 2), Some(1));
        assert_eq!(find_run(0b1011_0110, 3), None);
        assert_eq!(find_run(0, 1), None);
        assert_eq!(span_bits(3, 2), 0b11000);
        assert_eq!(span_bits(16, 16), 0xffff_0000);
    }

    #[test]
    fn carves_spans_and_gives_them_back() {
        let ss = map_new();
        assert!(!ss.is_null());
        assert_eq!(ss as usize % SS_SIZE, 0);
        // SAFETY: a fresh SuperSlab that only this test uses.
        unsafe {
            assert!(valid(ss));
            assert_eq!(registry::kind(ss as usize + 12345), registry::SUPERSLAB);
            let c = crate::sizeclass::std_class(100 * 1024); // a 16-slab span
            let n = INFO[c].slabs as usize;
            let i = find_run((*ss).free_mask, n).unwrap();
            let s = init_span(ss, i, c, null_mut());
            assert_eq!((*s).start, ss as usize + i * SLAB_SIZE);
            assert_eq!((*s).org, (*s).start, "a mid class keeps the span's start");
            for j in i..i + n {
                assert_eq!(slab_of(ss, ss as usize + j * SLAB_SIZE + 77), s);
            }
            assert_eq!((*ss).free_mask & span_bits(i, n), 0);
            assert!(!is_empty(ss));
            // The next span goes after it; every class can take freed slabs.
            let s2 = init_span(ss, find_run((*ss).free_mask, 1).unwrap(), 0, null_mut());
            assert_eq!((*s2).index as usize, i + n);
            free_span(ss, s, 5);
            assert_eq!((*slab_of(ss, (*s).start + SLAB_SIZE)).lim, 0);
            assert_eq!((*slab_of(ss, (*s).start + SLAB_SIZE)).carved_bytes(), 0);
            assert_eq!((*ss).dirty_mask, span_bits(i, n));
            let s3 = init_span(ss, find_run((*ss).free_mask, 1).unwrap(), 2, null_mut());
            assert_eq!(
                (*s3).index as usize,
                i,
                "a freed span is reused by another class"
            );
            // A Tiny class's blocks start at multiples of their size (48 B
            // here), at most one block in, and as many fit as the rest holds.
            let first = ss as usize + i * SLAB_SIZE;
            assert_eq!((*s3).org, 0);
            assert_eq!((*s3).start % 48, 0);
            assert!((*s3).start >= first && (*s3).start < first + 48);
            assert_eq!((*s3).count as usize, (first + SLAB_SIZE - (*s3).start) / 48);
            free_span(ss, s2, 6);
            free_span(ss, s3, 7);
            assert!(is_empty(ss));
            assert_eq!(purge(ss, 10, 100), 105, "nothing is due before the delay");
            assert_ne!((*ss).dirty_mask, 0);
            assert_eq!(purge(ss, 106, 100), 107, "only the slab freed first is due");
            assert_eq!(purge(ss, 107, 100), 0);
            assert_eq!((*ss).dirty_mask, 0);
        }
        unmap(ss);
        assert_eq!(registry::kind(ss as usize), registry::FOREIGN);
    }
}
