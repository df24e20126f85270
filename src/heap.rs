//! Thread heaps and the Tiny / Mid / Small-Mid front ends.
//!
//! Each thread owns a heap: per size class a hot list that the malloc fast
//! path pops and the free fast path pushes, a current slab, a list of
//! partially free slabs, the SuperSlabs it carves spans from, and a
//! lock-free list of blocks other threads freed. The hot list is LIFO: the
//! block the program freed last, still in the caches, is the next one of
//! its class it gets. It is fed by the batch refill, which moves a slab's
//! whole free list onto it, and it is bounded: past its class's limit the
//! older half goes back to the spans. Behind it is free-list sharding: a
//! slab's blocks come back to it through `local_free` (the hot list's
//! overflow and the owner's slow-path frees) and the heap's `remote` lists
//! (other threads' frees, walked side by side), and the slow path moves
//! whole lists at a time and carves fresh blocks a few pages at a time. So
//! a fast-path malloc is a pointer pop and a fast-path free a pointer push,
//! with no atomics.
//!
//! Every block's state is checked on free: the arena's table (or, outside
//! the arena, the registry) gives the span descriptor covering the address,
//! the descriptor says it is a block start, and the
//! block's second word says whether it is already free (the cookie written by
//! free, cleared by malloc). Misuse stops the program (report::misuse).
//!
//! Heaps are never unmapped: at thread exit a heap goes to a pool with its
//! slabs and the next new thread adopts it, so remote frees can always reach
//! a heap, and thread churn reuses warm memory.
//!
//! May call: superslab, arena, registry, sizeclass, tls, os, config, stats, report,
//! meta, large (for sizes above MID_MAX).

use crate::config;
use crate::large;
use crate::meta;
use crate::os;
use crate::registry;
use crate::report::misuse;
use crate::sizeclass::{self, ALIGNED_MAX, DIRECT, INFO, MID_MAX, NUM_CLASSES, TINY_MAX};
use crate::stats;
use crate::superslab::{self as ss, Block, Slab, SuperSlab};
use crate::sync::{Racy, SpinLock};
use crate::tls;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

#[repr(C, align(64))]
pub struct Heap {
    /// The thread pointer (`tls::thread_pointer`) of the thread that owns
    /// the heap, 0 while none does: the slow paths' owner test, one
    /// `%fs`-relative compare (the free fast path tests the span's copy,
    /// `Slab::tp`). Set when a thread takes the heap, cleared with every
    /// copy (`disown`) before it gives it up (and, in a fork child, for every
    /// heap but the forking thread's), so a thread that reuses an exited
    /// thread's TCB never matches a heap it does not own.
    pub tp: usize,
    /// Tiny fast path: the hot list by `(size + 15) / 16` (EMPTY_HOT in the
    /// empty heap and in secure mode).
    pub direct: [*mut Hot; DIRECT],
    /// Per class, the blocks this heap's owner freed most recently, handed
    /// out again first (LIFO), and the batch the last refill took from a
    /// span. The malloc fast path pops them; the free fast path pushes the
    /// owner's frees here.
    pub hot: [Hot; NUM_CLASSES],
    /// The current slab of every class (EMPTY_SLAB when none).
    pub cur: [*mut Slab; NUM_CLASSES],
    /// Slabs with free blocks that are not current, per class.
    pub partial: [*mut Slab; NUM_CLASSES],
    pub partial_tail: [*mut Slab; NUM_CLASSES],
    /// SuperSlabs of this heap with free slabs, binned by their longest run
    /// of free slabs (1..31); bit k of `avail_bits` says bin k is not empty.
    pub avail: [*mut SuperSlab; 32],
    pub avail_bits: u32,
    /// When to purge dirty free slabs next (ms), 0 when nothing is dirty.
    pub purge_at: u64,
    /// When to give the hot lists back to the spans next (ms): a block on a
    /// hot list keeps its span in use, so they are emptied once per purge
    /// delay, and spans they alone kept can be retired and purged.
    pub hot_flush_at: u64,
    /// Bytes the hot lists' bounds have grown beyond their bases (at most
    /// `extra_max`).
    pub hot_extra: usize,
    /// Slow-path calls, to look at the clock only now and then.
    pub ticks: u32,
    /// Secure mode: the state of the generator that shuffles carved blocks.
    pub rng: u64,
    pub pool_next: *mut Heap,
    pub all_next: *mut Heap,
    /// Every SuperSlab this heap owns (linked through `owned_next`).
    pub owned: AtomicPtr<SuperSlab>,
    /// Blocks freed by other threads: `REMOTE_LISTS` lock-free stacks (a
    /// block goes on the one its address picks), on a cache line of their
    /// own: other threads' pushes must not evict the lines the owner's fast
    /// paths read.
    pub remote: CacheLine<[AtomicPtr<Block>; REMOTE_LISTS]>,
}

/// How many remote lists a heap has. The owner walks them side by side, one
/// block of each in turn: the blocks were last written by other cores, so
/// each step of one list waits for a cache miss, and the steps of different
/// lists wait at once (prodcons, where every free is remote, spent 30% of
/// its time in that walk with one list).
pub const REMOTE_LISTS: usize = 4;
const _: () = assert!(REMOTE_LISTS.is_power_of_two() && REMOTE_LISTS > 1);

/// The remote list of a heap that block `a` goes on: the top bits of a
/// multiplicative hash of its 16-byte granule.
#[inline]
fn remote_list(a: usize) -> usize {
    let bits = REMOTE_LISTS.trailing_zeros();
    ((a as u64 >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

/// Whether other threads have freed blocks to `h`.
#[inline]
unsafe fn has_remote(h: *mut Heap) -> bool {
    // SAFETY: `h` is a live heap; the lists are atomics.
    unsafe { (*h).remote.iter().any(|r| !r.load(Relaxed).is_null()) }
}

/// A class's hot list: blocks that are out as far as their spans' counts
/// go (`Slab::used`), waiting in the heap to be handed out again. Most
/// recently freed first, so a block the program just freed, still in the
/// caches, is the next one of its size it gets.
///
/// Two kinds of list, by the bound a class starts with (`base_limit`):
///
/// - **Uncounted** (a bound of `UNCOUNTED_MIN` blocks or more: every class
///   up to 1 KiB by default): the free fast path pushes and counts nothing,
///   so it writes no counter that the next free must read back (a chain
///   through memory that made a tight loop's free 0.35 ns slower: see
///   docs/DESIGN.md, "Uncounted hot lists"). `room` counts mallocs up
///   from `-TICK_POPS`; the one that brings it to 0 runs the heap's clock
///   tick (`pop_tick`), so a thread whose mallocs and frees all stay on the
///   fast paths still returns memory after the purge delay. Such a list is
///   not bounded by count: it is emptied into its spans once per purge
///   delay (`tick`), and when the heap is about to take a new span while
///   the list has not been popped since the last time it was
///   (`flush_idle`), so that blocks of a class the program stopped
///   allocating do not keep spans from being reused for another.
/// - **Counted** (the others: bigger blocks, or a small `HAKMEM_HOT_KB`):
///   `room` holds two counters, so that a counted free keeps both with
///   one subtraction of `ROOM_FREE` and one jump on its borrow. The low half
///   is the room left: a refill sets it to the list's `limit`, each free
///   takes one off and each malloc adds one back, so while it has not
///   wrapped the list holds at most the refill's batch plus `limit` blocks
///   (and up to `TICK_FREES` more until the next check sees the wrap). The
///   high half counts frees down from `TICK_FREES` (a wrap of the low half
///   borrows one more from it). The borrow out of the high half sends every
///   `TICK_FREES`-th free to `hot_check`, which doubles the bound of an
///   overfull list while the heap's budget (`extra_max`) allows, else gives
///   its older half back to the spans, and runs the heap's clock tick.
///
/// A span's `Slab::hot` is the address of its class's list; that word is
/// also the free mark of every free block of the class in the heap
/// (`cookie`). The span's owner copy `Slab::tp` has bit 0 set when the
/// list is counted (`span_tp`), so the free fast path's owner test, a
/// compare with `%fs:0` it makes anyway, passes only for an uncounted span;
/// a counted span's free (in `free_miss`) passes a second compare, with the
/// bit flipped. (A test of a bit of the hot word after the owner test cost
/// every uncounted free one more test and jump.)
#[repr(C, align(16))]
pub struct Hot {
    pub head: *mut Block,
    pub room: u32,
    pub class: u16,
    /// The bound in blocks (counted lists): `base_limit` of the class,
    /// doubled (up to 1024, within the heap's `hot_extra` budget) each time
    /// the list overflows, and back to the base when the lists are emptied.
    pub limit: u16,
    /// Uncounted lists: `room` when `flush_idle` last looked.
    pub seen: u32,
    /// Whether the free fast path counts this list (see above).
    pub counted: bool,
}

/// The smallest bound (in blocks) that leaves a class's hot list uncounted.
pub const UNCOUNTED_MIN: u32 = 128;

/// Whether class `c`'s hot lists are counted (read on slow paths only):
/// short ones, and always those of classes above `ALIGNED_MAX`, whose spans
/// the free fast path's block-start test does not fit.
#[inline]
pub fn counted_class(c: usize) -> bool {
    INFO[c].size as usize > ALIGNED_MAX || base_limit(c) < UNCOUNTED_MIN
}

/// Mallocs from an uncounted list between two of its clock ticks. A tick
/// reads the clock (about 20 ns through the vDSO), so on a list that serves
/// a malloc every few nanoseconds every 128th malloc paying for it cost
/// about 0.15 ns a malloc; every 256th, half that. A program that allocates
/// even a few blocks a millisecond still ticks several times a second.
const TICK_POPS: u32 = 256;

/// `Hot::room` of an uncounted list `TICK_POPS` mallocs before its tick.
const POPS_START: u32 = 0u32.wrapping_sub(TICK_POPS);

/// `Slab::tp` of a span of class `c` in heap `h` (owned): the owner's thread
/// pointer, bit 0 set when the class is counted, so that the free fast
/// path's owner test also tells the two kinds of list apart.
#[inline]
pub unsafe fn span_tp(h: *mut Heap, c: usize) -> usize {
    // SAFETY: `h` is a live heap.
    unsafe { (*h).tp | ((*h).tp != 0 && (*h).hot[c].counted) as usize }
}

/// What a free takes off `Hot::room`: one of each counter.
const ROOM_FREE: u32 = 0x1_0001;
/// Frees between two `hot_check`s of a class, at most (classes whose limit
/// is smaller are checked every `limit` frees, so that what a list may
/// hold beyond its limit stays within `HAKMEM_HOT_KB` too).
const TICK_FREES: u32 = 128;

/// `Hot::room` of a list bounded at `limit` blocks, with `room` left and a
/// full count of frees to the next check.
#[inline]
fn room_word(limit: u32, room: u32) -> u32 {
    (limit.min(TICK_FREES) << 16) | room
}

impl Hot {
    const EMPTY: Hot = Hot {
        head: null_mut(),
        room: 0,
        class: 0,
        limit: 0,
        seen: 0,
        counted: false,
    };
}

/// The hot list of the empty heap's (and secure mode's) direct table: always
/// empty, never written.
pub static EMPTY_HOT: Static<Hot> = Static(Hot::EMPTY);
const EH: *mut Hot = &EMPTY_HOT.0 as *const Hot as *mut Hot;

/// The hot list bound of class `c` to start from, in blocks:
/// `HAKMEM_HOT_KB` (128 KiB) of blocks, 2 to `MAX_LIMIT` (read on slow
/// paths only).
#[inline]
fn base_limit(c: usize) -> u32 {
    (config::HOT_KB.get() * 1024 / INFO[c].size as usize).clamp(2, MAX_LIMIT as usize) as u32
}

/// The largest bound of a hot list, in blocks.
const MAX_LIMIT: u32 = 1024;

/// Bytes a heap's hot lists may hold beyond their base limits, when lists
/// that overflow grow: 16 times `HAKMEM_HOT_KB`.
#[inline]
fn extra_max() -> usize {
    config::HOT_KB.get() * 1024 * 16
}

/// A value alone on its cache line.
#[repr(C, align(64))]
pub struct CacheLine<T>(pub T);

impl<T> core::ops::Deref for CacheLine<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A `static` holder for structures containing raw pointers.
#[repr(transparent)]
pub struct Static<T>(pub T);
// SAFETY: the empty slab and empty heap are never written (every write path
// first checks it is not looking at them).
unsafe impl<T> Sync for Static<T> {}

pub static EMPTY_SLAB: Static<Slab> = Static(Slab::EMPTY);
const E: *mut Slab = &EMPTY_SLAB.0 as *const Slab as *mut Slab;

impl Heap {
    /// A heap with every list empty (its slabs are all EMPTY_SLAB). A
    /// template: each use is a fresh copy (the static empty heap, a new
    /// heap's initial value), never a shared atomic.
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Heap = Heap {
        tp: 0,
        direct: [EH; DIRECT],
        hot: [Hot::EMPTY; NUM_CLASSES],
        cur: [E; NUM_CLASSES],
        partial: [null_mut(); NUM_CLASSES],
        partial_tail: [null_mut(); NUM_CLASSES],
        avail: [null_mut(); 32],
        avail_bits: 0,
        purge_at: 0,
        hot_flush_at: 0,
        hot_extra: 0,
        ticks: 0,
        rng: 0,
        pool_next: null_mut(),
        all_next: null_mut(),
        owned: AtomicPtr::new(null_mut()),
        remote: CacheLine([const { AtomicPtr::new(null_mut()) }; REMOTE_LISTS]),
    };
}

/// The heap every thread starts with and returns to: all lists empty, so the
/// first malloc falls into the slow path, which gives the thread a real heap.
#[no_mangle]
pub static hakmem_empty_heap: Static<Heap> = Static(Heap::EMPTY);

#[inline(always)]
pub fn empty_heap() -> *mut Heap {
    &hakmem_empty_heap.0 as *const Heap as *mut Heap
}

/// Secure mode: the per-process secret mixed into each free block's cookie.
pub static SECRET: AtomicUsize = AtomicUsize::new(0);

/// The free cookie of block `a` of span `s`: the span's `Slab::hot` word
/// (the address of its class's hot list in its heap; set when the span is
/// carved for the heap and kept while
/// it has blocks), which the free fast path loads anyway to push the block
/// (a live block's second word only equals it if the program copied it out
/// of a freed block: nothing hands the program a hot list's address; malloc
/// clears it to 0, which no list's address is); in secure mode the
/// per-process secret mixed with the block's address, so that it cannot be
/// guessed and a cookie copied from one freed block does not pass for
/// another's.
#[inline(always)]
fn cookie(s: *mut Slab, a: usize) -> usize {
    if config::secure() {
        a ^ SECRET.load(Relaxed)
    } else {
        // SAFETY: `s` is a live descriptor; `hot` is a plain word of it.
        unsafe { (*s).hot as usize }
    }
}

// ---------------------------------------------------------------------------
// Secure mode (HAKMEM_SECURE=1)
//
// The fast paths never run: a thread's direct table stays on EMPTY_SLAB and
// every span's divisor constant is 0, so each malloc and free takes the
// slow path, which stores every free-list link encoded (`next ^ mask(at)`,
// the mask drawn from two per-process secrets and the link's own address)
// and checks each link it follows: it must decode to a block of the same
// slab (or, on the remote list, of this heap) whose free cookie is intact.
// A write into a freed block is then reported at the next malloc that meets
// it, not followed into arbitrary memory.

/// The two secrets of the link mask (zero unless secure).
static LINK_KEY: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

#[inline]
fn link_mask(at: usize) -> usize {
    (at ^ LINK_KEY[1].load(Relaxed)).wrapping_mul(LINK_KEY[0].load(Relaxed))
}

/// Store `next` as the link of free block `b` (encoded in secure mode).
#[inline]
unsafe fn set_link(b: *mut Block, next: *mut Block) {
    let v = if config::secure() {
        (next as usize ^ link_mask(b as usize)) as *mut Block
    } else {
        next
    };
    // SAFETY: `b` is a free block the caller owns.
    unsafe { (*b).next = v };
}

/// The link of free block `b`, decoded.
#[inline]
unsafe fn link(b: *mut Block) -> *mut Block {
    // SAFETY: `b` is a free block the caller owns.
    let v = unsafe { (*b).next };
    if config::secure() {
        (v as usize ^ link_mask(b as usize)) as *mut Block
    } else {
        v
    }
}

/// Secure mode: the block `b` about to be handed out from slab `s`, whose
/// decoded link is `next`, must still carry its free cookie, and `next` must
/// be a block of `s` (or null). Anything else means a freed block was
/// written to.
#[cold]
unsafe fn check_free_block(s: *mut Slab, b: *mut Block, next: *mut Block) {
    // SAFETY: `s` is owned by the caller and `b` is on its free list.
    unsafe {
        let size = (*s).size as usize;
        let off = (next as usize).wrapping_sub((*s).start);
        if (*b).cookie != cookie(s, b as usize)
            || (!next.is_null() && (off >= (*s).carved_bytes() || !off.is_multiple_of(size)))
        {
            misuse(
                "malloc",
                b as usize,
                "heap corruption: this free block was overwritten (use after free or overflow)",
                size,
            );
        }
    }
}

/// xorshift64* step of the heap's generator (secure mode only).
fn next_random(h: *mut Heap) -> u64 {
    // SAFETY: the caller owns `h`.
    unsafe {
        let mut x = (*h).rng;
        if x == 0 {
            x = os::random_u64() | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (*h).rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

// ---------------------------------------------------------------------------
// malloc

/// The fast path for sizes up to 1 KiB: pop the class's hot list.
/// Everything else is one jump to `malloc_miss`, with `size` still in the
/// register it came in (two instructions fewer than deciding between the
/// refill and the slow path here, which kept a copy of it).
#[inline(always)]
pub unsafe fn malloc(size: usize) -> *mut u8 {
    if size <= TINY_MAX {
        // SAFETY: the thread's heap is the empty heap or one it owns; its
        // direct entries always point at a valid hot list (maybe EMPTY_HOT,
        // which is always empty).
        unsafe {
            let t = (*tls::heap()).direct[(size + 15) >> 4];
            if !(*t).head.is_null() {
                return pop_hot(t);
            }
        }
    }
    // SAFETY: no precondition beyond a valid size.
    unsafe { malloc_miss(size) }
}

/// The fast path's miss: a hot list that ran dry is refilled straight away
/// (its class is known, the thread is set up); the empty heap's lists, and
/// sizes above 1 KiB, take the slow path.
#[inline(never)]
unsafe fn malloc_miss(size: usize) -> *mut u8 {
    if size <= TINY_MAX {
        // SAFETY: as in `malloc`.
        unsafe {
            let h = tls::heap();
            let t = (*h).direct[(size + 15) >> 4];
            if t != EH {
                return refill_current(h, t);
            }
        }
    }
    // SAFETY: no precondition beyond a valid size.
    unsafe { malloc_slow(size) }
}

/// The fast path's miss on an empty hot list `t` of heap `h` (the calling
/// thread's): the batch refill for its class.
#[inline(never)]
unsafe fn refill_current(h: *mut Heap, t: *mut Hot) -> *mut u8 {
    // SAFETY: `t` is one of `h.hot` (a real heap's direct table only points
    // there), owned by the calling thread.
    unsafe {
        let b = refill(h, (*t).class as usize);
        if b.is_null() {
            os::set_errno(libc::ENOMEM);
        }
        b
    }
}

/// Everything the fast path does not serve: mid sizes, empty lists, the
/// thread's first call, large blocks. Null with errno ENOMEM on failure.
#[inline(never)]
pub unsafe fn malloc_slow(size: usize) -> *mut u8 {
    if size > MID_MAX {
        return large::alloc(size, 0, false);
    }
    // SAFETY: the class fits the size.
    unsafe { malloc_class(sizeclass::class_of(size)) }
}

/// A block of class `c` for the calling thread, setting the thread up first
/// if needed.
pub unsafe fn malloc_class(c: usize) -> *mut u8 {
    // SAFETY: the thread's heap is the empty heap or its own.
    unsafe {
        let mut h = tls::heap();
        if h == empty_heap() {
            h = thread_init();
            if h.is_null() {
                os::set_errno(libc::ENOMEM);
                return null_mut();
            }
        }
        alloc_class(h, c)
    }
}

/// A block of class `c` from heap `h` (owned by the caller).
pub unsafe fn alloc_class(h: *mut Heap, c: usize) -> *mut u8 {
    // SAFETY: `h` is the calling thread's heap.
    unsafe {
        let t = &raw mut (*h).hot[c];
        if !(*t).head.is_null() {
            return pop_hot(t);
        }
        let b = refill(h, c);
        if b.is_null() {
            os::set_errno(libc::ENOMEM);
        }
        b
    }
}

/// Ask for the cache line at `p` ahead of its use: the block a list's next
/// pop will read. A hint only: any address will do (null, or a link
/// corrupted by the program), it never faults.
#[inline(always)]
fn prefetch(p: *const Block) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetcht0 reads nothing architecturally and cannot fault.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Pop the first block of hot list `t` (not empty), clearing its free mark,
/// and prefetch the block after it: a list whose blocks other threads freed
/// (collected from the remote lists) or that has not been used for a while
/// is walked at the pace of its cache misses otherwise, one pop waiting for
/// the last (producer/consumer 1.7-2.0x; the tight pair loop 0.93x). Each
/// pop adds one to `room`: room given back on a counted list, a malloc
/// counted towards the next tick on an uncounted one (`pop_tick` at 0).
#[inline(always)]
unsafe fn pop_hot(t: *mut Hot) -> *mut u8 {
    // SAFETY: `t.head` is non-null and owned by the calling thread; the asm
    // adds to `t.room`, a `u32` of that list, and touches nothing else.
    unsafe {
        let b = (*t).head;
        let next = (*b).next;
        (*t).head = next;
        prefetch(next);
        // `room += 1`, to `pop_tick` when it wraps to 0. On x86-64 as an
        // `add` of 1 to memory and a jump on zero: LLVM's `inc` there is one
        // more micro-op, which on a batch of mallocs cost 4-7%.
        #[cfg(target_arch = "x86_64")]
        core::arch::asm!(
            "add dword ptr [{t} + {room}], 1",
            "jz {tick}",
            t = in(reg) t,
            room = const core::mem::offset_of!(Hot, room),
            tick = label { return unsafe { pop_tick(t, b) } },
            options(nostack),
        );
        #[cfg(not(target_arch = "x86_64"))]
        {
            let r = (*t).room.wrapping_add(1);
            (*t).room = r;
            if r == 0 {
                return pop_tick(t, b);
            }
        }
        // (The unchecked measurement builds leave no free mark to clear.)
        #[cfg(not(feature = "unchecked-mark"))]
        {
            (*b).cookie = 0;
        }
        b.cast()
    }
}

/// The malloc that brought `room` of hot list `t` to 0, handing out `b`
/// (just popped): on an uncounted list, the `TICK_POPS`-th since the last
/// tick, which runs the heap's clock tick now. (A counted list's room never
/// gets there: its high half stays below `TICK_FREES`.)
#[cold]
#[inline(never)]
unsafe fn pop_tick(t: *mut Hot, b: *mut Block) -> *mut u8 {
    // SAFETY: `t` is `hot[t.class]` of the calling thread's heap; `b` is
    // the block just taken off it.
    unsafe {
        #[cfg(not(feature = "unchecked-mark"))]
        {
            (*b).cookie = 0;
        }
        if !(*t).counted {
            (*t).room = POPS_START;
            tick(heap_of(t));
        }
        b.cast()
    }
}

/// The heap whose `hot` array holds list `t`.
#[inline]
fn heap_of(t: *mut Hot) -> *mut Heap {
    // SAFETY (of the arithmetic): `t` is `hot[t.class]` of a heap.
    let c = unsafe { (*t).class as usize };
    (t as usize - core::mem::offset_of!(Heap, hot) - c * core::mem::size_of::<Hot>()) as *mut Heap
}

/// Hand out a block of `s` (owned, `s.free` not empty), whose class's hot
/// list is empty: the whole of `s.free` becomes the hot list and its first
/// block is popped. Secure mode pops `s.free` itself, checking each block.
#[inline(always)]
unsafe fn hand_out(h: *mut Heap, s: *mut Slab) -> *mut u8 {
    // SAFETY: `s` and `h` are owned by the calling thread.
    unsafe {
        if config::secure() {
            return pop(s);
        }
        let t = &raw mut (*h).hot[(*s).class as usize];
        debug_assert!((*t).head.is_null());
        (*t).head = (*s).free;
        if (*t).counted {
            let limit = (*t).limit as u32;
            (*t).room = room_word(limit, limit);
        }
        (*s).free = null_mut();
        pop_hot(t)
    }
}

#[inline(always)]
unsafe fn pop(s: *mut Slab) -> *mut u8 {
    // SAFETY: `s.free` is non-null and owned by the calling thread.
    unsafe {
        let b = (*s).free;
        let next = link(b);
        if config::secure() {
            check_free_block(s, b, next);
        }
        (*s).free = next;
        prefetch(next);
        (*b).cookie = 0;
        b.cast()
    }
}

/// The batch refill: collect remote frees, then take the current slab's
/// local frees, carve more of it, switch to a partial slab, or carve a new
/// span. Null when the OS has no memory.
#[inline(never)]
unsafe fn refill(h: *mut Heap, c: usize) -> *mut u8 {
    // SAFETY: `h` is the calling thread's heap; every slab reached from it is
    // owned by it.
    unsafe {
        if has_remote(h) {
            collect_remote(h);
        }
        (*h).ticks = (*h).ticks.wrapping_add(1);
        if (*h).ticks.is_multiple_of(64) {
            tick(h);
        }
        let s = (*h).cur[c];
        if s != E {
            if !(*s).free.is_null() || take_local(s) || carve(s) {
                return hand_out(h, s);
            }
            mark_full(s);
            set_current(h, c, E);
        }
        loop {
            let s = (*h).partial[c];
            if s.is_null() {
                break;
            }
            partial_remove(h, s);
            if !(*s).free.is_null() || take_local(s) || carve(s) {
                set_current(h, c, s);
                return hand_out(h, s);
            }
            mark_full(s);
        }
        flush_idle(h);
        let s = new_span(h, c);
        if s.is_null() {
            return null_mut();
        }
        carve(s);
        set_current(h, c, s);
        hand_out(h, s)
    }
}

/// `s` has nothing left to hand out: it leaves every list until frees bring
/// its count of blocks out down by an eighth of its blocks (so that, taken
/// again, it serves a batch rather than one or two blocks), or to zero.
#[inline]
unsafe fn mark_full(s: *mut Slab) {
    // SAFETY: owner-only fields of an owned slab.
    unsafe {
        (*s).full = 1;
        let k = ((*s).count as u32 / 8).max(1);
        let w = (*s).used().saturating_sub(k);
        (*s).set_wake(w);
    }
}

/// Blocks of `s` handed out and not yet back (walks its free list and its
/// class's hot list: slow paths only).
unsafe fn live(s: *mut Slab) -> u32 {
    // SAFETY: owner-only fields of an owned slab; `free` is its list, and
    // the hot list holds blocks of its heap's spans.
    unsafe {
        let mut n = (*s).used();
        let mut b = (*s).free;
        while !b.is_null() && n != 0 {
            n -= 1;
            b = link(b);
        }
        if !(*s).hot.is_null() {
            let mut b = (*(*s).hot).head;
            while !b.is_null() && n != 0 {
                let a = b as usize;
                if ss::slab_of(ss::of(a), a) == s {
                    n -= 1;
                }
                b = (*b).next;
            }
        }
        n
    }
}

/// Move the owner's frees into the allocation list.
#[inline]
unsafe fn take_local(s: *mut Slab) -> bool {
    // SAFETY: owner-only fields of an owned slab.
    unsafe {
        if (*s).local_free.is_null() || !(*s).free.is_null() {
            return !(*s).free.is_null();
        }
        (*s).free = (*s).local_free;
        (*s).local_free = null_mut();
        // Every block of the span is now out or on `free`.
        (*s).set_used((*s).carved as u32);
        true
    }
}

/// Carve up to a few pages of never-used blocks into the free list: pages are
/// touched as they are needed, not when the span is taken.
unsafe fn carve(s: *mut Slab) -> bool {
    // SAFETY: the span `[start, start + count*size)` belongs to `s`.
    unsafe {
        let left = (*s).count - (*s).carved;
        if left == 0 {
            return false;
        }
        let size = (*s).size as usize;
        let n = (8192 / size).max(4).min(left as usize);
        let first = (*s).start + (*s).carved as usize * size;
        if config::secure() {
            carve_shuffled(s, first, n);
            return true;
        }
        let mut a = first;
        for i in 0..n {
            let b = a as *mut Block;
            (*b).next = if i + 1 < n {
                (a + size) as *mut Block
            } else {
                (*s).free
            };
            (*b).cookie = cookie(s, a);
            a += size;
        }
        (*s).free = first as *mut Block;
        (*s).carved += n as u16;
        (*s).add_carved(n as u32);
        // `a` is now the end of the carved blocks (Slab::lim).
        (*s).lim = ((a - (*s).org) / size) as u64 * INFO[(*s).class as usize].div_e;
        true
    }
}

/// Secure mode's carve: the `n` new blocks from `first` go onto the free
/// list in a random order (Fisher-Yates; each block's cookie word holds the
/// permutation while it is built), with encoded links.
#[cold]
unsafe fn carve_shuffled(s: *mut Slab, first: usize, n: usize) {
    // SAFETY: blocks `first + k*size` for k < n are never-used blocks of `s`,
    // owned by the caller; each is at least 16 bytes (link and cookie words).
    unsafe {
        let size = (*s).size as usize;
        let blk = |k: usize| (first + k * size) as *mut Block;
        for k in 0..n {
            (*blk(k)).cookie = k;
        }
        for k in (1..n).rev() {
            let j = (next_random((*s).heap) % (k as u64 + 1)) as usize;
            let t = (*blk(k)).cookie;
            (*blk(k)).cookie = (*blk(j)).cookie;
            (*blk(j)).cookie = t;
        }
        let mut next = (*s).free;
        for k in (0..n).rev() {
            let b = blk((*blk(k)).cookie);
            set_link(b, next);
            next = b;
        }
        for k in 0..n {
            (*blk(k)).cookie = cookie(s, blk(k) as usize);
        }
        (*s).free = next;
        (*s).carved += n as u16;
        (*s).add_carved(n as u32);
        // `lim` stays 0: secure mode frees never take the fast path.
    }
}

unsafe fn set_current(h: *mut Heap, c: usize, s: *mut Slab) {
    // SAFETY: `h` is owned by the caller; `s` is EMPTY_SLAB (never written)
    // or a slab of `h`.
    unsafe {
        (*h).cur[c] = s;
        if s != E {
            // The current slab is never settled (it is neither put on the
            // partial list nor retired while current): frees to it skip the
            // call. It leaves this state only through mark_full or retire.
            (*s).set_wake(u32::MAX);
        }
    }
}

/// Append `s` to its class's partial list: a FIFO, so the slab that has
/// had the longest time to collect frees is taken first.
unsafe fn partial_push(h: *mut Heap, s: *mut Slab) {
    // SAFETY: owner-only list.
    unsafe {
        let c = (*s).class as usize;
        let tail = (*h).partial_tail[c];
        (*s).next = null_mut();
        (*s).prev = tail;
        if tail.is_null() {
            (*h).partial[c] = s;
        } else {
            (*tail).next = s;
        }
        (*h).partial_tail[c] = s;
        (*s).in_partial = 1;
    }
}

unsafe fn partial_remove(h: *mut Heap, s: *mut Slab) {
    // SAFETY: owner-only list; `s` is in it.
    unsafe {
        let c = (*s).class as usize;
        if (*s).prev.is_null() {
            (*h).partial[c] = (*s).next;
        } else {
            (*(*s).prev).next = (*s).next;
        }
        if (*s).next.is_null() {
            (*h).partial_tail[c] = (*s).prev;
        } else {
            (*(*s).next).prev = (*s).prev;
        }
        (*s).next = null_mut();
        (*s).prev = null_mut();
        (*s).in_partial = 0;
    }
}

/// A new span for class `c`: from the SuperSlab of this heap whose longest
/// free run fits best (preferring slabs whose pages are still resident), else
/// a new SuperSlab.
unsafe fn new_span(h: *mut Heap, c: usize) -> *mut Slab {
    let n = INFO[c].slabs as usize;
    // SAFETY: the avail bins and their SuperSlabs are owned by `h`.
    unsafe {
        // First a run of dirty (still resident) free slabs in any fitting
        // SuperSlab, a few looked at per bin; else the best-fitting bin.
        let fit = (*h).avail_bits & !((1u32 << n) - 1);
        let mut bins = fit;
        let mut found: Option<(*mut SuperSlab, usize)> = None;
        'search: while bins != 0 {
            let b = bins.trailing_zeros() as usize;
            bins &= bins - 1;
            let mut x = (*h).avail[b];
            let mut k = 0;
            while !x.is_null() && k < 4 {
                if let Some(i) = ss::find_run((*x).free_mask & (*x).dirty_mask, n) {
                    found = Some((x, i));
                    break 'search;
                }
                x = (*x).next;
                k += 1;
            }
        }
        let (x, i) = match found {
            Some(f) => f,
            None => {
                let x = if fit != 0 {
                    (*h).avail[fit.trailing_zeros() as usize]
                } else {
                    let x = ss::acquire(h);
                    if x.is_null() {
                        return null_mut();
                    }
                    own(h, x);
                    x
                };
                (x, ss::find_run((*x).free_mask, n).unwrap_or(1))
            }
        };
        let s = ss::init_span(x, i, c, h);
        avail_update(h, x);
        s
    }
}

/// Put SuperSlab `x`, just acquired, on the list of all SuperSlabs of `h`.
unsafe fn own(h: *mut Heap, x: *mut SuperSlab) {
    // SAFETY: owner-only list; `x` is ours and on no list. The release store
    // publishes `x` only once its link is written (see `disown`).
    unsafe {
        let head = (*h).owned.load(Relaxed);
        (*x).owned_prev = null_mut();
        (*x).owned_next.store(head, Relaxed);
        if !head.is_null() {
            (*head).owned_prev = x;
        }
        (*h).owned.store(x, Release);
    }
}

/// Take SuperSlab `x` off the list of `h` (it is about to be released).
unsafe fn unown(h: *mut Heap, x: *mut SuperSlab) {
    // SAFETY: owner-only list (or a pooled heap under POOL_LOCK); `x` is on
    // it. One release store unlinks it for a walker.
    unsafe {
        let next = (*x).owned_next.load(Relaxed);
        let prev = (*x).owned_prev;
        if prev.is_null() {
            (*h).owned.store(next, Release);
        } else {
            (*prev).owned_next.store(next, Release);
        }
        if !next.is_null() {
            (*next).owned_prev = prev;
        }
        (*x).owned_next.store(null_mut(), Relaxed);
        (*x).owned_prev = null_mut();
    }
}

/// `h` changes hands (its thread exits, or a fork child leaves it behind):
/// no thread passes the owner test on it or its spans any more. Every
/// span's copy of the owner is cleared, so the free fast path sends frees
/// into them to the slow path until a new owner refreshes them there.
unsafe fn disown(h: *mut Heap) {
    // SAFETY: the caller holds `h` exclusively (its exiting owner), or is a
    // fork child's only thread: the list is then frozen in a state a walker
    // can follow (`own`, `unown`), and only `tp` words are written.
    unsafe {
        (*h).tp = 0;
        let mut x = (*h).owned.load(Acquire);
        while !x.is_null() {
            for i in 0..ss::SLABS {
                (*x).slabs[i].tp = 0;
            }
            x = (*x).owned_next.load(Acquire);
        }
    }
}

/// Length of the longest run of set bits.
fn longest_run(mut m: u32) -> usize {
    let mut k = 0;
    while m != 0 {
        m &= m << 1;
        k += 1;
    }
    k
}

/// File SuperSlab `x` in the bin of its longest free run (none when full).
unsafe fn avail_update(h: *mut Heap, x: *mut SuperSlab) {
    // SAFETY: owner-only bins; `x` belongs to `h`.
    unsafe {
        let b = longest_run((*x).free_mask) as u32;
        if (*x).bin == b {
            return;
        }
        if (*x).bin != 0 {
            avail_remove(h, x);
        }
        if b != 0 {
            let head = (*h).avail[b as usize];
            (*x).prev = null_mut();
            (*x).next = head;
            if !head.is_null() {
                (*head).prev = x;
            }
            (*h).avail[b as usize] = x;
            (*h).avail_bits |= 1 << b;
            (*x).bin = b;
        }
    }
}

unsafe fn avail_remove(h: *mut Heap, x: *mut SuperSlab) {
    // SAFETY: owner-only bins; `x` is in bin `x.bin`.
    unsafe {
        let b = (*x).bin as usize;
        if (*x).prev.is_null() {
            (*h).avail[b] = (*x).next;
            if (*x).next.is_null() {
                (*h).avail_bits &= !(1 << b);
            }
        } else {
            (*(*x).prev).next = (*x).next;
        }
        if !(*x).next.is_null() {
            (*(*x).next).prev = (*x).prev;
        }
        (*x).next = null_mut();
        (*x).prev = null_mut();
        (*x).bin = 0;
    }
}

// ---------------------------------------------------------------------------
// free

/// The fast path: a valid block of an uncounted span of the arena owned by
/// this thread goes on its hot list. Everything else is one jump to
/// `free_miss`, with `p` still in the register it came in.
#[inline(always)]
pub unsafe fn free(p: *mut u8) {
    let a = p as usize;
    if let Some(s) = crate::arena::span_of(a) {
        // SAFETY: the arena's table gives a live descriptor: of the span at
        // `a`, or one whose `lim` is 0, which no address passes.
        if unsafe { free_owned::<false>(s, a) } {
            return;
        }
    }
    // SAFETY: any pointer may go there.
    unsafe { free_miss(p) }
}

/// Whether `a` is the start of a carved block of span `s` (a live
/// descriptor, maybe one with `lim == 0`, which no address passes). With
/// `aligned` (the uncounted spans' test, a constant) the origin is taken to
/// be 0, one subtraction fewer: right for every class up to `ALIGNED_MAX`,
/// meaningless for a bigger one, whose spans are always counted, so that
/// its owner test fails anyway.
#[inline(always)]
unsafe fn block_start(s: *mut Slab, a: usize, aligned: bool) -> bool {
    // SAFETY: `s` is a live descriptor.
    unsafe {
        let off = if aligned { a } else { a.wrapping_sub((*s).org) };
        (off as u64).wrapping_mul((*s).div_m) < (*s).lim
    }
}

/// The owner's free of block `a` of span `s` (a live descriptor, maybe one
/// with `lim == 0`) onto its hot list, for an uncounted span (`COUNTED`
/// false: the fast path) or a counted one: false, changing nothing, unless
/// `a` is the start of a block of `s` that is out, `s` is of that kind
/// and the calling thread owns it.
#[inline(always)]
unsafe fn free_owned<const COUNTED: bool>(s: *mut Slab, a: usize) -> bool {
    // SAFETY: `s` is a live descriptor; the block is only written once it is
    // known to be a block of `s`, out, and ours.
    unsafe {
        let b = a as *mut Block;
        // `Slab::tp` has bit 0 set on a counted span (`span_tp`).
        let tp = (*s).tp ^ COUNTED as usize;
        // The measurement builds without the free mark (`unchecked-mark`;
        // `unchecked` is it and `unchecked-start` together).
        #[cfg(feature = "unchecked-mark")]
        if (cfg!(feature = "unchecked-start") || block_start(s, a, !COUNTED))
            && tls::is_thread_pointer(tp)
        {
            let t = (*s).hot;
            (*b).next = (*t).head;
            if COUNTED {
                push_hot(t, b);
            } else {
                (*t).head = b;
            }
            return true;
        }
        // (The `unchecked-start` measurement build skips the block-start test.)
        if (cfg!(feature = "unchecked-start") || block_start(s, a, !COUNTED))
            && tls::is_thread_pointer(tp)
        {
            // The cookie (here the span's hot word, as secure mode never
            // gets this far) says whether the block is free. (`already_free`
            // keeps the push on the straight line: 5% on a batch of frees,
            // where a taken jump to it cost that much.)
            let t = (*s).hot;
            if mark_is(b, s, t) {
                return already_free();
            }
            if COUNTED {
                free_counted(t, b);
            } else {
                write_free(b, t);
                (*t).head = b;
            }
            return true;
        }
        false
    }
}

/// Whether free block mark `t` (the span's hot word) is in block `b`'s
/// cookie word: a read of the block. (The `unchecked-read` measurement build
/// compares the span's hot word, read again, instead: the same instructions
/// without touching the block, so it is never "already free".)
#[inline(always)]
unsafe fn mark_is(b: *mut Block, s: *mut Slab, t: *mut Hot) -> bool {
    // SAFETY: `b` is the start of a block of live descriptor `s`.
    unsafe {
        if cfg!(feature = "unchecked-read") {
            core::ptr::read_volatile(&raw const (*s).hot) as usize == 1
        } else {
            (*b).cookie == t as usize
        }
    }
}

/// Every free the fast path does not take: a counted span's (its own
/// owner's push), a SuperSlab outside the arena (either kind of push), and
/// the slow path for the rest (another thread's block, a block already
/// free, large blocks, pointers hakmem does not know).
#[inline(never)]
unsafe fn free_miss(p: *mut u8) {
    let a = p as usize;
    let s = match crate::arena::span_of(a) {
        Some(s) => s,
        None => match registry::superslab_base(a) {
            // SAFETY: the registry says a SuperSlab header is mapped at
            // `base`; span_head always points at a descriptor of it. The
            // fast path has not tried this span.
            Some(base) => unsafe {
                let s = ss::slab_of(base as *mut SuperSlab, a);
                if free_owned::<false>(s, a) {
                    return;
                }
                s
            },
            // SAFETY: any pointer may reach the slow path.
            None => return unsafe { free_slow(p, "free") },
        },
    };
    // SAFETY: `s` is a live descriptor (as in `free`).
    if unsafe { free_owned::<true>(s, a) } {
        return;
    }
    // SAFETY: any pointer may reach the slow path; it validates everything.
    unsafe { free_slow(p, "free") }
}

/// The free fast path's answer for a block whose free mark is set: false,
/// to the slow path, which reports it. Cold, so the push stays on the
/// straight line.
#[cold]
#[inline(never)]
fn already_free() -> bool {
    false
}

/// Write both words of block `b`, freed onto hot list `t`: its link (the
/// list's head) and its free cookie (`t`, the span's hot word), as two
/// 8-byte stores (a 16-byte copy from the list was slower: docs/DESIGN.md,
/// "Tried and not kept").
#[inline(always)]
unsafe fn write_free(b: *mut Block, t: *mut Hot) {
    // SAFETY: `t` is a real heap's hot list; `b` is a block the caller
    // owns, at least 16 bytes long (`Block`'s two words).
    unsafe {
        (*b).next = (*t).head;
        (*b).cookie = t as usize;
    }
}

/// The owner's free of block `b` onto counted hot list `t`: out of line,
/// so that the uncounted push stays short.
#[inline(never)]
unsafe fn free_counted(t: *mut Hot, b: *mut Block) {
    // SAFETY: as write_free and push_hot; the caller checked the block.
    unsafe {
        write_free(b, t);
        push_hot(t, b);
    }
}

/// Push block `b` (the owner's free, its link to `t.head` and its cookie
/// written) on counted hot list `t`; every `TICK_FREES`-th free also checks
/// the list's bound and the clock.
#[inline(always)]
unsafe fn push_hot(t: *mut Hot, b: *mut Block) {
    // SAFETY: the caller owns `t` (it passed the owner test of the span
    // whose `hot` it is), and `b` is a block that was out.
    unsafe {
        debug_assert!((*b).next == (*t).head);
        (*t).head = b;
        let (r, borrow) = (*t).room.overflowing_sub(ROOM_FREE);
        (*t).room = r;
        if borrow {
            hot_check(t);
        }
    }
}

/// Every `TICK_FREES`-th free into counted hot list `t` (the caller's): if
/// the room ran out, double the list's bound while the heap's budget allows, else
/// give the older half back to the spans; then run the heap's clock tick
/// (purge, maintenance).
#[inline(never)]
unsafe fn hot_check(t: *mut Hot) {
    // SAFETY: `t` is `hot[t.class]` of the calling thread's heap, whose
    // address follows from the field's offset.
    unsafe {
        let c = (*t).class as usize;
        let h = heap_of(t);
        let limit = (*t).limit as u32;
        let room = (*t).room & 0xffff;
        if room == 0 || room > 0x8000 {
            // How many blocks past the bound the list is.
            let over = if room == 0 { 0 } else { 0x1_0000 - room };
            let wider = (limit * 2).min(MAX_LIMIT);
            let grow = (wider - limit) as usize * INFO[c].size as usize;
            if over < wider - limit && (*h).hot_extra + grow <= extra_max() {
                (*h).hot_extra += grow;
                (*t).limit = wider as u16;
                (*t).room = room_word(wider, wider - limit - over);
            } else {
                flush_hot(t, true);
            }
        } else {
            (*t).room = room_word(limit, room);
        }
        tick(h);
    }
}

/// Free the blocks of hot list `t` (owned by the calling thread, or by a
/// caller holding its heap exclusively) into their spans' `local_free`:
/// with `half`, all but the `limit / 2` most recent.
#[inline(never)]
unsafe fn flush_hot(t: *mut Hot, half: bool) {
    // SAFETY: every block on `t` is a block of a span of `t`'s heap, counted
    // out in its span (`Slab::used`); they are linked through `next`.
    unsafe {
        let limit = (*t).limit as u32;
        let keep = if half { limit / 2 } else { 0 };
        let mut rest = (*t).head;
        let mut kept = 0u32;
        if keep > 0 && !rest.is_null() {
            let mut last = rest;
            kept = 1;
            while kept < keep && !(*last).next.is_null() {
                last = (*last).next;
                kept += 1;
            }
            rest = (*last).next;
            (*last).next = null_mut();
        } else {
            (*t).head = null_mut();
        }
        if (*t).counted {
            (*t).room = room_word(limit, limit - kept);
        }
        while !rest.is_null() {
            let next = (*rest).next;
            let a = rest as usize;
            push_local(ss::slab_of(ss::of(a), a), rest);
            rest = next;
        }
    }
}

/// Give every block on hot list `c` of `h` back to its span, and the list's
/// bound back to its base.
unsafe fn reset_hot(h: *mut Heap, c: usize) {
    // SAFETY: the caller holds `h` exclusively.
    unsafe {
        let t = &raw mut (*h).hot[c];
        flush_hot(t, false);
        let base = base_limit(c);
        let limit = (*t).limit as u32;
        if (*t).counted && limit > base {
            (*h).hot_extra -= (limit - base) as usize * INFO[c].size as usize;
            (*t).limit = base as u16;
            (*t).room = room_word(base, base);
        }
    }
}

/// `reset_hot` every hot list of `h` (once per purge delay, malloc_trim).
unsafe fn flush_all(h: *mut Heap) {
    // SAFETY: the caller holds `h` exclusively.
    unsafe {
        for c in 0..NUM_CLASSES {
            reset_hot(h, c);
        }
    }
}

/// Before heap `h` takes a new span: empty into their spans the uncounted
/// hot lists that have had no malloc since the last call (their `room` has
/// not moved), so that blocks of a class the program stopped allocating
/// (freed in bulk, or left behind by a realloc that grew) go back where
/// they can be reused for another class, rather than wait for the next
/// purge delay's `flush_all`.
unsafe fn flush_idle(h: *mut Heap) {
    // SAFETY: the caller owns `h`.
    unsafe {
        for c in 0..NUM_CLASSES {
            let t = &raw mut (*h).hot[c];
            if (*t).counted {
                continue;
            }
            if !(*t).head.is_null() && (*t).room == (*t).seen {
                flush_hot(t, false);
            }
            (*t).seen = (*t).room;
        }
    }
}

/// Push block `b` on `s.local_free` (the owner's free) and settle `s` if
/// that brought it to its wake mark.
#[inline(always)]
unsafe fn push_local(s: *mut Slab, b: *mut Block) {
    // SAFETY: the caller owns `s`, and `b` is one of its blocks that was out.
    unsafe {
        (*b).next = (*s).local_free;
        (*s).local_free = b;
        if (*s).put_back() {
            settle((*s).heap, s);
        }
    }
}

/// A block went back to its (owned) slab: leave the full state, or retire
/// the span when nothing in it is used and it is not the current slab.
#[inline(never)]
unsafe fn settle(h: *mut Heap, s: *mut Slab) {
    // SAFETY: `s` is owned by `h`, the calling thread's heap (or one the
    // caller holds exclusively).
    unsafe {
        if (*s).full != 0 {
            (*s).full = 0;
            (*s).set_wake(0);
            if (*s).used() != 0 {
                partial_push(h, s);
                return;
            }
        }
        if (*s).used() == 0 && (*h).cur[(*s).class as usize] != s {
            if (*s).in_partial != 0 {
                partial_remove(h, s);
            }
            retire(h, s, false);
        }
    }
}

/// Give an unused span back to its SuperSlab and schedule the purge (with
/// `purge_now`, purge its slabs at once).
unsafe fn retire(h: *mut Heap, s: *mut Slab, purge_now: bool) {
    // SAFETY: `s` has no live block and is in no list.
    unsafe {
        let x = ss::of((*s).start);
        let (i, n) = ((*s).index as usize, (*s).nslabs as usize);
        let now = os::now_ms();
        ss::free_span(x, s, now);
        avail_update(h, x);
        let delay = config::PURGE_DELAY_MS.get() as u64;
        if delay == 0 {
            ss::purge(x, now, 0);
            if ss::is_empty(x) {
                avail_remove(h, x);
                unown(h, x);
                ss::release(x, now);
            }
        } else if purge_now {
            ss::purge_run(x, i, n);
        } else if (*h).purge_at == 0 {
            (*h).purge_at = now + delay;
        }
    }
}

/// Validate `p` completely and free it, or report the misuse. `op` names the
/// operation in the report ("free", "realloc").
#[inline(never)]
pub unsafe fn free_slow(p: *mut u8, op: &str) {
    let a = p as usize;
    if a == 0 {
        return;
    }
    match registry::kind(a) {
        registry::SUPERSLAB => {
            // SAFETY: the registry says a SuperSlab is mapped here.
            unsafe {
                let (s, b) = check_block(a, op);
                let h = (*s).heap;
                let ck = cookie(s, a);
                // The heap's owner test (the fast path tests the span's
                // copy, which a heap's new owner sets here, on its first
                // free into each span).
                if tls::is_thread_pointer((*h).tp) {
                    (*s).tp = span_tp(h, (*s).class as usize);
                    set_link(b, (*s).local_free);
                    (*b).cookie = ck;
                    (*s).local_free = b;
                    if (*s).put_back() {
                        settle(h, s);
                    }
                } else {
                    (*b).cookie = ck;
                    let lists: &[AtomicPtr<Block>; REMOTE_LISTS] = &(*h).remote;
                    let r = &lists[remote_list(a)];
                    let mut head = r.load(Relaxed);
                    loop {
                        set_link(b, head);
                        match r.compare_exchange_weak(head, b, Release, Relaxed) {
                            Ok(_) => break,
                            Err(x) => head = x,
                        }
                    }
                }
            }
        }
        // SAFETY: large::free validates the header.
        registry::LARGE | registry::LARGE_TAIL => unsafe { large::free(a, op) },
        _ => misuse(op, a, "pointer not allocated by hakmem", 0),
    }
}

/// The span and block of a SuperSlab address, or a misuse report: freed
/// slab, not a block start, or already free.
pub unsafe fn check_block(a: usize, op: &str) -> (*mut Slab, *mut Block) {
    // SAFETY: caller checked the registry.
    unsafe {
        let x = ss::of(a);
        if !ss::valid(x) {
            misuse(
                op,
                a,
                "pointer not allocated by hakmem (corrupted SuperSlab header)",
                0,
            );
        }
        let s = ss::slab_of(x, a);
        let off = a.wrapping_sub((*s).start);
        if off >= (*s).carved_bytes() {
            misuse(
                op,
                a,
                "pointer not allocated by hakmem, or already freed (free memory)",
                0,
            );
        }
        let size = (*s).size as usize;
        // off % size != 0, by the divisibility constant (no division); the
        // class table's, since secure mode zeroes the span's copy.
        let m = INFO[(*s).class as usize].div_m;
        if (off as u64).wrapping_mul(m) >= m {
            misuse(op, a, "pointer into the middle of a block", size);
        }
        let b = a as *mut Block;
        // (The unchecked measurement builds leave no free mark to test.)
        if cfg!(not(feature = "unchecked-mark")) && (*b).cookie == cookie(s, a) {
            if op == "free" {
                misuse(op, a, "double free", size);
            }
            misuse(op, a, "block already freed", size);
        }
        (s, b)
    }
}

/// Usable size of a live SuperSlab block (after validation by the caller).
pub unsafe fn block_size(a: usize) -> usize {
    // SAFETY: caller checked the registry.
    unsafe { (*ss::slab_of(ss::of(a), a)).size as usize }
}

/// Secure mode: remote-freed block `b` must still carry its free cookie and
/// its decoded link `next` must be null or a block of heap `h`.
#[cold]
unsafe fn check_remote_link(h: *mut Heap, b: *mut Block, next: *mut Block) {
    let a = next as usize;
    // SAFETY: `b` is a block of `h` on its remote list; `next` is only
    // dereferenced after the registry says a SuperSlab is mapped there.
    unsafe {
        let ok = (*b).cookie == cookie(ss::slab_of(ss::of(b as usize), b as usize), b as usize)
            && (next.is_null()
                || (registry::kind(a) == registry::SUPERSLAB && ss::valid(ss::of(a)) && {
                    let s = ss::slab_of(ss::of(a), a);
                    let off = a.wrapping_sub((*s).start);
                    (*s).heap == h
                        && off < (*s).carved_bytes()
                        && off.is_multiple_of((*s).size as usize)
                }));
        if !ok {
            misuse(
                "free",
                b as usize,
                "heap corruption: this freed block was overwritten (use after free or overflow)",
                0,
            );
        }
    }
}

/// Free every block other threads handed back to `h`, walking its remote
/// lists side by side.
unsafe fn collect_remote(h: *mut Heap) {
    // SAFETY: only the owner swaps the lists out; their blocks belong to
    // slabs of `h` (a slab with a live block cannot change owner).
    unsafe {
        let mut l: [*mut Block; REMOTE_LISTS] = [null_mut(); REMOTE_LISTS];
        for (k, r) in (*h).remote.iter().enumerate() {
            if !r.load(Relaxed).is_null() {
                l[k] = r.swap(null_mut(), Acquire);
            }
        }
        loop {
            let mut any = false;
            for b in l.iter_mut() {
                if !b.is_null() {
                    *b = collect_one(h, *b);
                    any = true;
                }
            }
            if !any {
                break;
            }
        }
    }
}

/// Free remote-freed block `b` of `h` into its span; its successor on the
/// remote list.
#[inline(always)]
unsafe fn collect_one(h: *mut Heap, b: *mut Block) -> *mut Block {
    // SAFETY: as for `collect_remote`.
    unsafe {
        let next = link(b);
        if config::secure() {
            check_remote_link(h, b, next);
        }
        let a = b as usize;
        let s = ss::slab_of(ss::of(a), a);
        set_link(b, (*s).local_free);
        (*s).local_free = b;
        if (*s).put_back() {
            settle(h, s);
        }
        next
    }
}

// ---------------------------------------------------------------------------
// purging and maintenance

/// Every 64th slow path and every `hot_check`: empty the hot lists, purge
/// this heap's dirty slabs and run the global maintenance, each when due.
#[cold]
unsafe fn tick(h: *mut Heap) {
    let now = os::now_ms();
    // SAFETY: `h` is the caller's heap.
    unsafe {
        if now >= (*h).hot_flush_at {
            flush_all(h);
            (*h).hot_flush_at = now + config::PURGE_DELAY_MS.get() as u64;
        }
        if (*h).purge_at != 0 && now >= (*h).purge_at {
            purge_heap(h, now, false);
        }
    }
    if now >= NEXT_MAINTENANCE.load(Relaxed) {
        maintain(now, false);
    }
}

/// Purge the dirty free slabs of `h` older than the purge delay (all with
/// `all`), and hand SuperSlabs that became empty to the global cache.
pub unsafe fn purge_heap(h: *mut Heap, now: u64, all: bool) {
    let delay = config::PURGE_DELAY_MS.get() as u64;
    let mut next_due = 0u64;
    // SAFETY: the caller holds `h` exclusively (owner, or pool lock).
    unsafe {
        let mut bins = (*h).avail_bits;
        while bins != 0 {
            let b = bins.trailing_zeros() as usize;
            bins &= bins - 1;
            let mut x = (*h).avail[b];
            while !x.is_null() {
                let next = (*x).next;
                if (*x).dirty_mask != 0 {
                    let due = ss::purge(x, now, if all { 0 } else { delay });
                    if due != 0 && (next_due == 0 || due < next_due) {
                        next_due = due;
                    }
                }
                if ss::is_empty(x) && (*x).dirty_mask == 0 {
                    avail_remove(h, x);
                    unown(h, x);
                    ss::release(x, now);
                }
                x = next;
            }
        }
        (*h).purge_at = next_due;
    }
}

static NEXT_MAINTENANCE: AtomicU64 = AtomicU64::new(0);
pub static MAINT_LOCK: SpinLock = SpinLock::new();

/// Process-wide upkeep, done by whichever thread gets here first: purge and
/// expire cached SuperSlabs and large blocks, and tidy the heaps of exited
/// threads (remote frees they received, empty slabs, dirty pages).
pub fn maintain(now: u64, all: bool) {
    if all {
        MAINT_LOCK.lock();
    } else if !MAINT_LOCK.try_lock() {
        return;
    }
    let delay = config::PURGE_DELAY_MS.get() as u64;
    NEXT_MAINTENANCE.store(now + delay.max(10), Relaxed);
    {
        let _g = POOL_LOCK.guard();
        // SAFETY: pooled heaps are owned by nobody; POOL_LOCK makes us their
        // only user.
        unsafe {
            let mut h = (*POOL.get()).0;
            while !h.is_null() {
                tidy(h, now, 0, false, all);
                h = (*h).pool_next;
            }
        }
    }
    ss::maintain(now, all);
    large::maintain(now, all);
    MAINT_LOCK.unlock();
}

/// Tidy a heap no thread is using: give its hot lists of blocks of
/// `min_size` bytes and more back to their spans, collect its remote frees;
/// retire its empty current spans of such blocks (with `purge_now`, their
/// pages go back at once); purge what is due (everything with `all`).
unsafe fn tidy(h: *mut Heap, now: u64, min_size: usize, purge_now: bool, all: bool) {
    // SAFETY: the caller holds `h` exclusively.
    unsafe {
        for (c, info) in INFO.iter().enumerate() {
            if info.size as usize >= min_size {
                reset_hot(h, c);
            }
        }
        if has_remote(h) {
            collect_remote(h);
        }
        for c in 0..NUM_CLASSES {
            let s = (*h).cur[c];
            if s != E && (*s).size as usize >= min_size && live(s) == 0 {
                set_current(h, c, E);
                retire(h, s, purge_now);
            }
        }
        if (*h).purge_at != 0 || all {
            purge_heap(h, now, all);
        }
    }
}

/// Smallest block size whose empty spans an exiting thread retires.
const BIG_PURGE: usize = 128 * 1024;

/// malloc_trim: return everything that can go back now. Returns true if
/// memory was released.
pub fn trim() -> bool {
    let before = stats::PURGED_BYTES.load(Relaxed) + stats::SS_MAPPED.load(Relaxed);
    let now = os::now_ms();
    let h = tls::heap();
    if h != empty_heap() {
        // SAFETY: the calling thread owns `h`.
        unsafe {
            flush_all(h);
            if has_remote(h) {
                collect_remote(h);
            }
            purge_heap(h, now, true);
        }
    }
    maintain(now, true);
    stats::PURGED_BYTES.load(Relaxed) + stats::SS_MAPPED.load(Relaxed) != before
}

// ---------------------------------------------------------------------------
// thread life cycle

/// Heaps of exited threads, waiting for a new thread (LIFO).
static POOL: Racy<(*mut Heap, *mut Heap)> = Racy::new((null_mut(), null_mut())); // (pool, all)
pub static POOL_LOCK: SpinLock = SpinLock::new();
static INIT: AtomicU32 = AtomicU32::new(0);
static ATFORK: AtomicU32 = AtomicU32::new(0);
static KEY: Racy<libc::pthread_key_t> = Racy::new(0);

/// Once per process: configuration, the cookie secret, the thread-exit key,
/// pre-warmed SuperSlabs. Nothing here calls malloc.
pub fn global_init() {
    if INIT.load(Acquire) == 2 {
        return;
    }
    if INIT.compare_exchange(0, 1, Acquire, Acquire).is_ok() {
        // (Not in unit tests: there the harness reports failed assertions.)
        #[cfg(not(test))]
        crate::report::install_panic_hook();
        config::init();
        if config::secure() {
            SECRET.store(os::random_u64() as usize | 1, Relaxed);
            LINK_KEY[1].store(os::random_u64() as usize, Relaxed);
            LINK_KEY[0].store(os::random_u64() as usize | 1, Relaxed);
        }
        // SAFETY: KEY is written once here, before INIT becomes 2.
        unsafe { libc::pthread_key_create(KEY.get(), Some(thread_exit)) };
        ss::prewarm(config::PREWARM.get());
        INIT.store(2, Release);
    } else {
        while INIT.load(Acquire) != 2 {
            os::yield_now();
        }
    }
}

/// Give the calling thread a heap: a pooled one, or a new one.
#[cold]
unsafe fn thread_init() -> *mut Heap {
    global_init();
    let h = {
        let _g = POOL_LOCK.guard();
        // SAFETY: POOL is only accessed under POOL_LOCK.
        unsafe {
            let p = &mut *POOL.get();
            let h = p.0;
            if !h.is_null() {
                p.0 = (*h).pool_next;
                (*h).pool_next = null_mut();
                h
            } else {
                let h = meta::alloc(core::mem::size_of::<Heap>(), 64) as *mut Heap;
                if h.is_null() {
                    return h;
                }
                h.write(Heap {
                    all_next: p.1,
                    ..Heap::EMPTY
                });
                for c in 0..NUM_CLASSES {
                    let t = &raw mut (*h).hot[c];
                    (*t).class = c as u16;
                    (*t).limit = base_limit(c) as u16;
                    (*t).counted = counted_class(c);
                    if !(*t).counted {
                        (*t).room = POPS_START;
                    }
                }
                // Secure mode keeps the direct table on EMPTY_HOT: no fast
                // path.
                if !config::secure() {
                    let table = sizeclass::direct_table();
                    for (d, &c) in (*h).direct.iter_mut().zip(table.iter()) {
                        *d = &raw mut (*h).hot[c as usize];
                    }
                }
                p.1 = h;
                stats::HEAPS.fetch_add(1, Relaxed);
                h
            }
        }
    };
    // SAFETY: `h` is ours now.
    unsafe { (*h).tp = tls::thread_pointer() };
    tls::set_heap(h);
    // These two may call malloc (glibc allocates key blocks past 32 keys and
    // atfork records): the thread already has its heap, so that recursion is
    // an ordinary allocation.
    // SAFETY: KEY was created by global_init.
    unsafe { libc::pthread_setspecific(*KEY.get(), h.cast()) };
    if ATFORK.swap(1, AcqRel) == 0 {
        // SAFETY: registering plain extern "C" functions.
        unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child)) };
    }
    h
}

/// pthread key destructor: the thread is exiting; its heap goes to the pool.
extern "C" fn thread_exit(p: *mut libc::c_void) {
    let h = p as *mut Heap;
    if h.is_null() || h == empty_heap() {
        return;
    }
    // SAFETY: `h` is the exiting thread's heap, used by no one else now.
    // Its remote frees are collected and slabs past the purge delay purged.
    // Of its hot lists and empty current spans only those of big blocks are
    // given back, and purged at once: a pooled heap would otherwise keep
    // their pages resident across thousands of short threads, and faulting
    // them again is cheap next to the use of blocks that big. The other hot
    // lists and current slabs stay warm for the next thread (maintenance
    // gives them back if none comes).
    unsafe {
        disown(h);
        tidy(h, os::now_ms(), BIG_PURGE, true, false);
    }
    // Later frees on this thread are remote frees; a later malloc takes a
    // heap again (and the key destructor runs again).
    tls::set_heap(empty_heap());
    let _g = POOL_LOCK.guard();
    // SAFETY: under POOL_LOCK.
    unsafe {
        let pool = &mut *POOL.get();
        (*h).pool_next = pool.0;
        pool.0 = h;
    }
}

extern "C" fn fork_prepare() {
    MAINT_LOCK.lock();
    crate::arena::LOCK.lock();
    POOL_LOCK.lock();
    meta::LOCK.lock();
    ss::CACHE_LOCK.lock();
    large::LOCK.lock();
}

extern "C" fn fork_parent() {
    large::LOCK.unlock();
    ss::CACHE_LOCK.unlock();
    meta::LOCK.unlock();
    POOL_LOCK.unlock();
    crate::arena::LOCK.unlock();
    MAINT_LOCK.unlock();
}

/// In the child only the forking thread exists. The other threads' heaps
/// stay owned by them (never adopted: they may have been mid-operation), so
/// the child leaks their free memory but never corrupts it.
extern "C" fn fork_child() {
    // Only the forking thread's heap has an owner now: a new thread whose
    // TCB reuses a vanished thread's must not pass the owner test there.
    let mine = tls::heap();
    // SAFETY: the child has one thread; POOL's `all` list only grows, and
    // every heap on it stays mapped.
    unsafe {
        let mut h = (*POOL.get()).1;
        while !h.is_null() {
            if h != mine {
                disown(h);
            }
            h = (*h).all_next;
        }
    }
    large::LOCK.reset();
    ss::CACHE_LOCK.reset();
    meta::LOCK.reset();
    POOL_LOCK.reset();
    crate::arena::LOCK.reset();
    MAINT_LOCK.reset();
}

/// Visit every heap ever created (for statistics).
pub fn heap_count() -> usize {
    stats::HEAPS.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    /// Heap tests share the process-wide pool: run them one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn blocks(n: usize, size: usize) -> Vec<usize> {
        (0..n)
            .map(|i| {
                // SAFETY: plain allocation through the front end.
                let p = unsafe { malloc(size) } as usize;
                assert_ne!(p, 0);
                assert_eq!(p % 16, 0);
                // SAFETY: the block holds `size` bytes.
                unsafe { core::ptr::write_bytes(p as *mut u8, i as u8, size) };
                p
            })
            .collect()
    }

    #[test]
    fn local_frees_are_reused_without_new_memory() {
        let _s = serial();
        std::thread::spawn(|| {
            let first: HashSet<usize> = blocks(2000, 48).into_iter().collect();
            assert_eq!(first.len(), 2000, "blocks are distinct");
            for &p in &first {
                // SAFETY: each block was allocated above and is freed once.
                unsafe { free(p as *mut u8) };
            }
            // SAFETY: `p` is a block of a live SuperSlab of this heap.
            let span = |p: usize| unsafe { (*ss::slab_of(ss::of(p), p)).start };
            let spans: HashSet<usize> = first.iter().map(|&p| span(p)).collect();
            let again = blocks(2000, 48);
            for &p in &again {
                assert!(
                    spans.contains(&span(p)),
                    "{p:#x} is in a span the freed blocks did not use"
                );
            }
            for p in again {
                // SAFETY: freed once.
                unsafe { free(p as *mut u8) };
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn remote_frees_reach_the_owner_and_are_collected() {
        let _s = serial();
        let (tx, rx) = std::sync::mpsc::channel::<Vec<usize>>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let owner = std::thread::spawn(move || {
            let h = tls::heap();
            let mine = blocks(1000, 200);
            let h2 = tls::heap();
            assert_ne!(h2, empty_heap());
            assert!(h == empty_heap() || h == h2);
            tx.send(mine.clone()).unwrap();
            done_rx.recv().unwrap();
            // SAFETY: `h2` is this thread's heap; other threads only push.
            unsafe {
                let mut n = 0;
                for r in (*h2).remote.iter() {
                    let mut b = r.load(Acquire);
                    let mut here = 0;
                    while !b.is_null() {
                        here += 1;
                        b = (*b).next;
                    }
                    // The address picks the list: every list gets some.
                    assert!(here > 100, "{here} of 1000 on one of the lists");
                    n += here;
                }
                assert_eq!(n, 1000, "every remote free is on the owner's lists");
                collect_remote(h2);
                assert!(!has_remote(h2));
                let mut slabs = HashSet::new();
                for &p in &mine {
                    assert_eq!(
                        (*(p as *mut Block)).cookie,
                        cookie(ss::slab_of(ss::of(p), p), p),
                        "block marked free"
                    );
                    slabs.insert(ss::slab_of(ss::of(p), p) as usize);
                }
                for s in slabs {
                    assert_eq!(live(s as *mut Slab), 0, "slab accounting back to zero");
                }
            }
        });
        let theirs = rx.recv().unwrap();
        std::thread::spawn(move || {
            for p in theirs {
                // SAFETY: allocated by the owner thread, freed once here.
                unsafe { free(p as *mut u8) };
            }
        })
        .join()
        .unwrap();
        done_tx.send(()).unwrap();
        owner.join().unwrap();
    }

    #[test]
    fn an_exiting_thread_hands_its_heap_to_the_next_thread() {
        let _s = serial();
        let first = std::thread::spawn(|| {
            blocks(10, 64);
            tls::heap() as usize
        })
        .join()
        .unwrap();
        let second = std::thread::spawn(|| {
            blocks(10, 64);
            tls::heap() as usize
        })
        .join()
        .unwrap();
        assert_eq!(first, second, "the pooled heap is adopted");
    }

    #[test]
    fn a_heap_that_changes_hands_loses_its_spans_owner_copies() {
        let _s = serial();
        // SAFETY: `p` is a block of a live SuperSlab.
        let slab = |p: usize| unsafe { ss::slab_of(ss::of(p), p) };
        let (ps, tp) = std::thread::spawn(move || {
            let ps = blocks(10, 96);
            // SAFETY: the span of a live block of this thread's heap.
            assert_eq!(unsafe { (*slab(ps[0])).tp }, tls::thread_pointer());
            (ps, tls::thread_pointer())
        })
        .join()
        .unwrap();
        let s = slab(ps[0]);
        // SAFETY: reading a descriptor of a pooled heap (the test is serial).
        unsafe {
            assert_eq!(
                (*s).tp,
                0,
                "cleared when the thread exited (it was {tp:#x})"
            );
            assert_eq!((*(*s).heap).tp, 0);
        }
        let sp = s as usize;
        std::thread::spawn(move || {
            let s = sp as *mut Slab;
            blocks(1, 96);
            // SAFETY: this thread adopted the pooled heap (the pool is LIFO
            // and the tests are serial); its blocks are freed once.
            unsafe {
                assert!(tls::is_thread_pointer((*(*s).heap).tp), "heap adopted");
                assert_eq!((*s).tp, 0, "spans are refreshed on a free, not before");
                free(ps[0] as *mut u8);
                assert_eq!((*s).tp, tls::thread_pointer(), "refreshed by the slow path");
                for &p in &ps[1..] {
                    free(p as *mut u8);
                }
            }
        })
        .join()
        .unwrap();
    }

    /// For each span holding one of the blocks `ps` (all out): the span and
    /// how many of its blocks out are not among them (an adopted heap may
    /// hold other tests' blocks).
    unsafe fn others_out(ps: &[usize]) -> Vec<(usize, u32)> {
        let mut out: std::collections::HashMap<usize, u32> = Default::default();
        for &p in ps {
            // SAFETY: `p` is a block of a live SuperSlab.
            *out.entry(unsafe { ss::slab_of(ss::of(p), p) } as usize)
                .or_insert(0) += 1;
        }
        // SAFETY: the spans are live (they hold blocks that are out).
        out.iter()
            .map(|(&s, &k)| (s, unsafe { live(s as *mut Slab) } - k))
            .collect()
    }

    /// Blocks on the hot list of class `c` of heap `h`.
    unsafe fn hot_len(h: *mut Heap, c: usize) -> u32 {
        let mut n = 0;
        // SAFETY: the caller owns `h`.
        let mut b = unsafe { (*h).hot[c].head };
        while !b.is_null() {
            n += 1;
            // SAFETY: a block on the list.
            b = unsafe { (*b).next };
        }
        n
    }

    #[test]
    fn a_counted_hot_list_hands_out_the_latest_free_and_stays_bounded() {
        let _s = serial();
        std::thread::spawn(|| {
            // 2 KiB blocks: a bound of 64 blocks, so a counted list.
            let size = 2048;
            let ps = blocks(3000, size);
            let h = tls::heap();
            let c = sizeclass::class_of(size);
            // SAFETY: the blocks are this thread's, each freed once; the
            // hot lists and slabs read are its own.
            unsafe {
                let before = others_out(&ps);
                let s0 = ss::slab_of(ss::of(ps[0]), ps[0]);
                assert_eq!(
                    (*s0).tp,
                    tls::thread_pointer() | 1,
                    "owner copy marks counted"
                );
                let n0 = hot_len(h, c);
                for &p in &ps[..10] {
                    free(p as *mut u8);
                }
                assert!((*h).hot[c].counted);
                assert_eq!(hot_len(h, c), n0 + 10, "the frees went on the hot list");
                let q = malloc(size) as usize;
                assert_eq!(q, ps[9], "the block freed last comes back first");
                free(q as *mut u8);
                for &p in &ps[10..] {
                    free(p as *mut u8);
                    let n = hot_len(h, c);
                    // The list holds the last refill's batch (at most a
                    // span's blocks) plus at most `limit` frees, and up to
                    // TICK_FREES more until the next check sees it full.
                    assert!(
                        n <= (*h).hot[c].limit as u32 + INFO[c].count + TICK_FREES,
                        "hot list of {n} blocks"
                    );
                }
                assert!(hot_len(h, c) >= (*h).hot[c].limit as u32 / 2);
                // Every block is back: on the hot list or in its span.
                for &(s, others) in &before {
                    assert_eq!(
                        live(s as *mut Slab),
                        others,
                        "span counts agree with the lists"
                    );
                }
                // (Not the spans again: malloc_trim may unmap those it
                // empties.)
                trim();
                assert_eq!(hot_len(h, c), 0, "malloc_trim empties the hot lists");
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn an_uncounted_hot_list_ticks_on_mallocs_and_empties_when_idle() {
        let _s = serial();
        std::thread::spawn(|| {
            let (a, b) = (64, 48);
            let ps = blocks(3000, a);
            let h = tls::heap();
            let (ca, cb) = (sizeclass::class_of(a), sizeclass::class_of(b));
            // SAFETY: the blocks are this thread's, each freed once; the
            // hot lists and heap fields read and set are its own.
            unsafe {
                assert!(!(*h).hot[ca].counted && !(*h).hot[cb].counted);
                // No purge-delay flush during the test: only what is tested
                // empties the lists.
                (*h).hot_flush_at = u64::MAX;
                let before = others_out(&ps);
                for &p in &ps {
                    free(p as *mut u8);
                }
                assert!(
                    hot_len(h, ca) >= 3000,
                    "uncounted: every free stays on the list"
                );
                for &(s, others) in &before {
                    assert_eq!(
                        live(s as *mut Slab),
                        others,
                        "span counts agree with the list"
                    );
                }
                // The TICK_POPS-th malloc from the list runs the tick.
                (*h).hot[ca].room = POPS_START;
                (*h).hot_flush_at = 0;
                let qs: Vec<usize> = (0..TICK_POPS - 1).map(|_| malloc(a) as usize).collect();
                assert_eq!(
                    (*h).hot_flush_at,
                    0,
                    "no tick before the {TICK_POPS}th malloc"
                );
                let last = malloc(a) as usize;
                assert_ne!(
                    (*h).hot_flush_at,
                    0,
                    "the {TICK_POPS}th malloc ran the tick"
                );
                assert_eq!(hot_len(h, ca), 0, "the tick's flush emptied the list");
                free(last as *mut u8);
                for &q in &qs {
                    free(q as *mut u8);
                }
                // Idle: no malloc of class a while class b takes new spans.
                (*h).hot_flush_at = u64::MAX;
                assert!(hot_len(h, ca) >= TICK_POPS);
                let bs = blocks(20_000, b);
                assert_eq!(hot_len(h, ca), 0, "the idle list went back to its spans");
                // ... which, emptied, served class b: some of its blocks are
                // where our 64 B blocks were.
                let reused = bs.iter().any(|&q| {
                    ps.iter()
                        .any(|&p| q / sizeclass::SLAB_SIZE == p / sizeclass::SLAB_SIZE)
                });
                assert!(reused, "no 48 B block in the 64 B blocks' slabs");
                for &p in &bs {
                    free(p as *mut u8);
                }
                (*h).hot_flush_at = 0;
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_hot_list_that_overflows_grows_within_the_budget_until_emptied() {
        let _s = serial();
        std::thread::spawn(|| {
            let size = 32 * 1024;
            let ps = blocks(200, size);
            let h = tls::heap();
            let c = sizeclass::class_of(size);
            let base = base_limit(c);
            // SAFETY: the blocks are this thread's, each freed once; the hot
            // lists read are its own.
            unsafe {
                assert_eq!((*h).hot[c].limit as u32, base);
                for &p in &ps {
                    free(p as *mut u8);
                    assert!((*h).hot_extra <= extra_max(), "over the budget");
                }
                let grown = (*h).hot[c].limit as u32;
                assert!(
                    grown > base,
                    "200 frees of {size} B left the bound at {grown}"
                );
                assert!(grown <= MAX_LIMIT);
                assert_eq!((*h).hot_extra, (grown - base) as usize * size);
                assert!(hot_len(h, c) > base, "the grown list keeps more blocks");
                trim();
                assert_eq!((*h).hot[c].limit as u32, base, "emptied lists start over");
                assert_eq!((*h).hot_extra, 0);
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn slab_counts_follow_mallocs_and_frees() {
        let _s = serial();
        std::thread::spawn(|| {
            // 1 KiB blocks: 64 per single-slab span. 100 fill the first span
            // (it goes full and leaves the lists) and start a second one.
            let ps = blocks(100, 1024);
            // SAFETY: every `p` is a live block of this thread's heap.
            let slab = |p: usize| unsafe { ss::slab_of(ss::of(p), p) };
            let first = slab(ps[0]);
            let mine: Vec<usize> = ps.iter().copied().filter(|&p| slab(p) == first).collect();
            let rest: Vec<usize> = ps.iter().copied().filter(|&p| slab(p) != first).collect();
            // SAFETY: owner-only fields read by the owning thread.
            unsafe {
                let count = (*first).count as u32;
                assert_eq!(mine.len() as u32, count, "the first span was used up");
                assert_eq!((*first).full, 1);
                assert_eq!((*first).used(), count);
                let cur = slab(rest[0]);
                assert_eq!((*tls::heap()).cur[(*cur).class as usize], cur);
                assert_eq!(
                    live(cur),
                    rest.len() as u32,
                    "blocks out of the current span"
                );
                // A free goes to the hot list; flushed, it reaches its span.
                let free_to_span = |p: usize| {
                    free(p as *mut u8);
                    flush_all(tls::heap());
                };
                // A full span rejoins the partial list once an eighth of its
                // blocks are back, not before.
                let k = (count / 8) as usize;
                for (i, &p) in mine.iter().enumerate() {
                    free_to_span(p);
                    assert_eq!((*first).used(), count - 1 - i as u32);
                    if i + 1 == k - 1 {
                        assert_eq!((*first).in_partial, 0, "still full after {} frees", i + 1);
                    }
                    if i + 1 == k {
                        assert_eq!((*first).in_partial, 1, "partial after {k} frees");
                        break;
                    }
                }
                // Freeing the rest retires it: its span is free again.
                for &p in &mine[k..] {
                    free_to_span(p);
                }
                assert_eq!((*first).lim, 0, "the empty span was retired");
                assert_eq!((*first).used(), 0);
                // The current span is never retired while current.
                for &p in &rest {
                    free_to_span(p);
                }
                assert_eq!(live(cur), 0);
                assert_ne!((*cur).lim, 0, "the current span stays in service");
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_arena_table_gives_every_block_its_span() {
        let _s = serial();
        std::thread::spawn(|| {
            let ps: Vec<usize> = [16, 48, 1024, 5000, 70_000]
                .iter()
                .flat_map(|&n| blocks(30, n))
                .collect();
            for &p in &ps {
                // SAFETY: `p` is a live block of a SuperSlab.
                let s = unsafe { ss::slab_of(ss::of(p), p) };
                // (Under a finite RLIMIT_AS SuperSlabs are mapped on their
                // own and the table does not cover them.)
                let t = crate::arena::span_of(p);
                assert!(
                    t.is_some() || os::address_space_limited(),
                    "{p:#x} not in the arena"
                );
                if let Some(t) = t {
                    assert_eq!(t, s, "{p:#x}: the table and the header agree");
                    // Interior slots of multi-slab spans, too.
                    // SAFETY: reading the live descriptor.
                    let end = unsafe {
                        ss::of(p) as usize
                            + ((*s).index + (*s).nslabs) as usize * sizeclass::SLAB_SIZE
                    };
                    assert_eq!(crate::arena::span_of(end - 1), Some(s));
                }
            }
            // An address no SuperSlab uses (a stack address: outside the
            // table's range, or in it with a zero entry) gives no descriptor
            // or one that no free passes.
            let outside = &ps as *const Vec<usize> as usize;
            if let Some(d) = crate::arena::span_of(outside) {
                // SAFETY: the table's answer is always a readable descriptor.
                assert_eq!(unsafe { (*d).lim }, 0);
            }
            for p in ps {
                // SAFETY: freed once.
                unsafe { free(p as *mut u8) };
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn mid_sizes_come_from_spans_of_their_class() {
        let _s = serial();
        std::thread::spawn(|| {
            for size in [1025, 5000, 70_000, MID_MAX] {
                let ps = blocks(20, size);
                for &p in &ps {
                    assert_eq!(registry::kind(p), registry::SUPERSLAB);
                    // SAFETY: a live block.
                    assert!(unsafe { block_size(p) } >= size);
                }
                for p in ps {
                    // SAFETY: freed once.
                    unsafe { free(p as *mut u8) };
                }
            }
        })
        .join()
        .unwrap();
    }
}
