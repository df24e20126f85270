//! The SuperSlab arena: one reservation of address space that SuperSlabs are
//! carved from, headed by the span table the free fast path reads.
//!
//! The table has one word per 64 KiB slot of the arena: the offset from the
//! table's own address to the descriptor of the span covering that slot (the
//! `span_head` entry of its SuperSlab). A slot no SuperSlab uses holds 0,
//! which points back at the table's first bytes: always zero, so they read as
//! a descriptor with `lim == 0`, which no free passes. So free goes from an
//! address to its span descriptor with one subtraction, one shift, one bound
//! check and one load, and needs no null test. Before the arena is reserved,
//! or if the kernel refuses, the table is a static zeroed one and every
//! SuperSlab is mapped on its own, as are new SuperSlabs while RLIMIT_AS is
//! finite (so that the limit holds for them); free finds those through the
//! registry.
//!
//! Chunks given back keep their address range (remapped PROT_NONE, their
//! pages dropped) and are reused first.
//!
//! May call: os, sync.

use crate::superslab::{Slab, SS_SIZE};
use crate::sync::{Racy, SpinLock};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering::*};

/// 64 KiB slots the table covers (32 GiB).
pub const SLOTS: usize = 1 << 19;
const SLOT_SHIFT: usize = 16;
const TABLE_BYTES: usize = SLOTS * 8;
/// Chunks (SuperSlabs) the table covers, the table's own included.
const CHUNKS: usize = SLOTS * (1 << SLOT_SHIFT) / SS_SIZE;
const TABLE_CHUNKS: usize = TABLE_BYTES / SS_SIZE;

/// The table when there is no arena: all zero, never written (a cell, so
/// that it lives in .bss, not in the file).
#[repr(C, align(4096))]
struct Fake([usize; SLOTS]);
static FAKE: Racy<Fake> = Racy::new(Fake([0; SLOTS]));

fn fake() -> usize {
    &FAKE as *const Racy<Fake> as usize
}

/// The table's address (the arena's start, or FAKE's).
static TABLE: AtomicPtr<usize> = AtomicPtr::new(&FAKE as *const Racy<Fake> as *mut usize);

struct State {
    tried: bool,
    /// Chunks reserved (the table's included); 0 without an arena.
    chunks: usize,
    /// Next never-used chunk.
    next: usize,
    /// Chunks given back, one bit each.
    free: [u64; CHUNKS / 64],
}

pub static LOCK: SpinLock = SpinLock::new();
static STATE: Racy<State> = Racy::new(State {
    tried: false,
    chunks: 0,
    next: TABLE_CHUNKS,
    free: [0; CHUNKS / 64],
});

/// The span descriptor covering address `a`, if `a` is in the arena (for an
/// address of a slot no SuperSlab uses: a descriptor no free passes).
#[inline(always)]
pub fn span_of(a: usize) -> Option<*mut Slab> {
    let t = TABLE.load(Relaxed) as usize;
    let i = slot_index(a.wrapping_sub(t));
    if i < SLOTS {
        // SAFETY: the table has SLOTS words; each is 0 or the offset of a
        // live descriptor from the table (see the module doc).
        Some((t + unsafe { *(t as *const usize).add(i) }) as *mut Slab)
    } else {
        None
    }
}

/// `d >> SLOT_SHIFT`, kept opaque to the optimiser on x86-64: LLVM would
/// otherwise fold `(d >> SLOT_SHIFT) < SLOTS` into `d < 2^35`, which takes a
/// copy and a second shift (no 64-bit immediate compare), one instruction
/// more on every free.
#[inline(always)]
fn slot_index(d: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let i: usize;
        // SAFETY: a register-only shift; no memory, stack or other state.
        unsafe {
            core::arch::asm!("shr {i}, {s}", i = inlateout(reg) d => i, s = const SLOT_SHIFT,
                             options(pure, nomem, nostack));
        }
        i
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        d >> SLOT_SHIFT
    }
}

/// Record `s` as the descriptor of the slot at `a` (a slot of an arena
/// SuperSlab; nothing otherwise).
#[inline]
pub fn set(a: usize, s: *mut Slab) {
    let t = TABLE.load(Relaxed) as usize;
    let i = a.wrapping_sub(t) >> SLOT_SHIFT;
    if t != fake() && i < SLOTS {
        // SAFETY: a word of the arena's table (read-write, ours).
        unsafe { *(t as *mut usize).add(i) = (s as usize).wrapping_sub(t) };
    }
}

/// Forget the slots of the SuperSlab at `a`.
fn clear(a: usize) {
    let t = TABLE.load(Relaxed) as usize;
    let i = a.wrapping_sub(t) >> SLOT_SHIFT;
    for k in 0..SS_SIZE >> SLOT_SHIFT {
        // SAFETY: words of the arena's table (the caller checked `a`).
        unsafe { *(t as *mut usize).add(i + k) = 0 };
    }
}

/// Reserve the arena: the largest of a few sizes the kernel grants.
fn reserve(st: &mut State) {
    st.tried = true;
    for chunks in [CHUNKS, CHUNKS / 8, CHUNKS / 64] {
        let p = crate::os::reserve_aligned(chunks * SS_SIZE, SS_SIZE);
        if p.is_null() {
            continue;
        }
        if !crate::os::commit(p, TABLE_BYTES) {
            crate::os::unmap(p, chunks * SS_SIZE);
            continue;
        }
        st.chunks = chunks;
        TABLE.store(p as *mut usize, Release);
        return;
    }
}

/// A fresh zeroed read-write 2 MiB chunk of the arena, or null (no arena, or
/// it is full: the caller maps the SuperSlab on its own).
pub fn chunk() -> *mut u8 {
    // Under a finite RLIMIT_AS the kernel must see every SuperSlab mapped,
    // so that the limit holds: memory from the reservation (counted once,
    // whole) would escape it. Checked on each call: a program may set the
    // limit at any time.
    if crate::os::address_space_limited() {
        return null_mut();
    }
    let _g = LOCK.guard();
    // SAFETY: STATE is only used under LOCK.
    let st = unsafe { &mut *STATE.get() };
    if !st.tried {
        reserve(st);
    }
    if st.chunks == 0 {
        return null_mut();
    }
    let mut k = usize::MAX;
    for (w, bits) in st.free.iter_mut().enumerate() {
        if *bits != 0 {
            let b = bits.trailing_zeros() as usize;
            *bits &= !(1 << b);
            k = w * 64 + b;
            break;
        }
    }
    if k == usize::MAX {
        if st.next == st.chunks {
            return null_mut();
        }
        k = st.next;
        st.next += 1;
    }
    let p = (TABLE.load(Relaxed) as usize + k * SS_SIZE) as *mut u8;
    if !crate::os::commit(p, SS_SIZE) {
        st.free[k / 64] |= 1 << (k % 64);
        return null_mut();
    }
    p
}

/// Take back the chunk at `p` if it is the arena's (its pages are dropped,
/// its range kept); false if it is not (the caller unmaps it). Either way a
/// SuperSlab in the table's window leaves the table.
pub fn give_back(p: *mut u8) -> bool {
    let t = TABLE.load(Relaxed) as usize;
    if t == fake() {
        return false;
    }
    let off = (p as usize).wrapping_sub(t);
    if off >> SLOT_SHIFT >= SLOTS {
        return false;
    }
    clear(p as usize);
    let _g = LOCK.guard();
    // SAFETY: STATE is only used under LOCK.
    let st = unsafe { &mut *STATE.get() };
    let k = off / SS_SIZE;
    if k >= st.chunks {
        // A SuperSlab mapped on its own past a smaller reservation.
        return false;
    }
    crate::os::decommit(p, SS_SIZE);
    st.free[k / 64] |= 1 << (k % 64);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_answers_for_its_slots_and_nothing_else() {
        for d in [0usize, 1, 0xffff, 0x1_0000, 0x1_2345_6789, usize::MAX] {
            assert_eq!(slot_index(d), d >> SLOT_SHIFT);
        }
        // Whichever table is in force (the static one, or the arena's),
        // it covers SLOTS slots from its own address.
        let t = TABLE.load(Relaxed) as usize;
        let end = t + (SLOTS << SLOT_SHIFT);
        assert!(span_of(t).is_some());
        assert!(span_of(end - 1).is_some());
        assert_eq!(span_of(end), None);
        assert_eq!(span_of(t - 1), None);
        assert_eq!(span_of(usize::MAX), None);
        assert_eq!(span_of(0), None);
    }
}
