//! Size classes: which block size serves a request, and how each class's
//! slabs are laid out (span length in 64 KiB slabs, block count, the divisor
//! constant that tells a block start from an interior pointer).
//!
//! Tiny classes: 16..128 in steps of 16, then four classes per doubling up to
//! 1 KiB. Mid classes continue four per doubling up to 256 KiB. The Small-Mid
//! front end (HAKMEM_SMALLMID=1) has its own four classes for 256 B - 1 KiB on
//! larger spans. Tables and arithmetic; reads `config::smallmid()` only.

use crate::config;

pub const SLAB_SHIFT: usize = 16;
pub const SLAB_SIZE: usize = 1 << SLAB_SHIFT;
/// Largest request served by the Tiny front end.
pub const TINY_MAX: usize = 1024;
/// Largest request served from SuperSlabs; larger ones are large blocks.
pub const MID_MAX: usize = 256 * 1024;
/// Largest block size whose spans put their blocks at multiples of the size
/// (`superslab::Slab::org`): every Tiny and Small-Mid class. For these the
/// block-start test multiplies the address itself, which is exact for every
/// address below 2^64 / size - size (2^54 - 1024 at 1 KiB; user space ends
/// at 2^47). These classes' hot lists are the uncounted ones that the free
/// fast path serves (`heap::counted_class`); a bigger class's padding could
/// cost a whole block of its span.
pub const ALIGNED_MAX: usize = TINY_MAX;
/// Standard classes: 8 linear + 11 doublings x 4.
pub const STD_CLASSES: usize = 8 + 11 * 4;
/// First of the four Small-Mid classes.
pub const SM_FIRST: usize = STD_CLASSES;
pub const NUM_CLASSES: usize = STD_CLASSES + 4;
/// Entries of the direct table, indexed by (size + 15) / 16 for size <= 1 KiB.
pub const DIRECT: usize = TINY_MAX / 16 + 1;

#[derive(Clone, Copy)]
pub struct ClassInfo {
    /// Block size in bytes (a multiple of 16).
    pub size: u32,
    /// Span length in 64 KiB slabs.
    pub slabs: u32,
    /// Blocks per span.
    pub count: u32,
    /// floor(2^64 / size) + 1: `off * div_m < div_m` iff `off % size == 0`
    /// (off < 2^32); for a block start `off = k * size`, `off * div_m` is
    /// `k * div_e` (mod 2^64).
    pub div_m: u64,
    /// `size * div_m - 2^64`, in 1..=size: `off * div_m < k * div_e` iff
    /// `off` is the start of one of the first `k` blocks (off < 2^32), one
    /// multiplication and one comparison for both tests of a free.
    pub div_e: u64,
}

const fn std_size(c: usize) -> usize {
    if c < 8 {
        16 * (c + 1)
    } else {
        let l = 7 + (c - 8) / 4; // group covers (2^l, 2^(l+1)]
        let k = (c - 8) % 4 + 1;
        (1 << l) + k * (1 << (l - 2))
    }
}

const fn class_size(c: usize) -> usize {
    if c < STD_CLASSES {
        std_size(c)
    } else {
        256 * (c - SM_FIRST + 1)
    }
}

const fn span_slabs(c: usize) -> usize {
    let size = class_size(c);
    if c >= SM_FIRST {
        return 4; // Small-Mid: 256 KiB spans, bigger batches per refill
    }
    if size <= TINY_MAX {
        return 1;
    }
    // Blocks per span: 8 up to 64 KiB, 2 above (so an idle heap's span of
    // big blocks pins little memory; see heap::thread_exit).
    let k = if size <= 64 * 1024 { 8 } else { 2 };
    let s = (size * k).div_ceil(SLAB_SIZE);
    if s > 16 {
        16
    } else {
        s
    }
}

const fn build_info() -> [ClassInfo; NUM_CLASSES] {
    let mut t = [ClassInfo {
        size: 0,
        slabs: 0,
        count: 0,
        div_m: 0,
        div_e: 0,
    }; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        let size = class_size(c);
        let slabs = span_slabs(c);
        let div_m = ((1u128 << 64) / size as u128) as u64 + 1;
        t[c] = ClassInfo {
            size: size as u32,
            slabs: slabs as u32,
            count: ((slabs * SLAB_SIZE) / size) as u32,
            div_m,
            div_e: (size as u64).wrapping_mul(div_m),
        };
        c += 1;
    }
    t
}

pub static INFO: [ClassInfo; NUM_CLASSES] = build_info();

/// Standard class of a size > 128 bytes (and <= MID_MAX).
#[inline]
const fn std_class_above_128(size: usize) -> usize {
    let l = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize; // size in (2^l, 2^(l+1)]
    8 + (l - 7) * 4 + (((size - 1) >> (l - 2)) - 4)
}

const fn build_direct(smallmid: bool) -> [u8; DIRECT] {
    let mut t = [0u8; DIRECT];
    let mut i = 0;
    while i < DIRECT {
        let size = if i == 0 { 1 } else { i * 16 };
        t[i] = if smallmid && size > 224 {
            (SM_FIRST + (size - 1) / 256) as u8
        } else if size <= 128 {
            ((size - 1) / 16) as u8
        } else {
            std_class_above_128(size) as u8
        };
        i += 1;
    }
    t
}

static DIRECT_STD: [u8; DIRECT] = build_direct(false);
static DIRECT_SM: [u8; DIRECT] = build_direct(true);

/// The class-per-16-bytes table in force (Small-Mid or standard).
#[inline]
pub fn direct_table() -> &'static [u8; DIRECT] {
    if config::smallmid() {
        &DIRECT_SM
    } else {
        &DIRECT_STD
    }
}

/// The standard class of `size` (<= MID_MAX), ignoring Small-Mid.
#[inline]
pub fn std_class(size: usize) -> usize {
    if size <= TINY_MAX {
        DIRECT_STD[(size + 15) >> 4] as usize
    } else {
        std_class_above_128(size)
    }
}

/// The class serving `size` (<= MID_MAX) under the front end in force.
#[inline]
pub fn class_of(size: usize) -> usize {
    if size <= TINY_MAX {
        direct_table()[(size + 15) >> 4] as usize
    } else {
        std_class_above_128(size)
    }
}

/// The smallest class whose blocks are `align`-aligned and hold `size` bytes,
/// for alignments up to one slab (spans start on 64 KiB boundaries, so a
/// block is aligned to the largest power of two dividing its class size).
pub fn class_for_aligned(size: usize, align: usize) -> Option<usize> {
    if align > SLAB_SIZE || size > MID_MAX {
        return None;
    }
    let mut c = std_class(size.max(align));
    while c < STD_CLASSES {
        if (INFO[c].size as usize).is_multiple_of(align) {
            return Some(c);
        }
        c += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_increasing_multiples_of_16() {
        for c in 0..STD_CLASSES {
            assert_eq!(INFO[c].size % 16, 0);
            if c > 0 {
                assert!(INFO[c].size > INFO[c - 1].size);
            }
        }
        assert_eq!(INFO[STD_CLASSES - 1].size as usize, MID_MAX);
        assert_eq!(INFO[class_of(TINY_MAX)].size as usize, TINY_MAX);
    }

    #[test]
    fn every_size_maps_to_the_smallest_class_that_fits() {
        for size in 1..=MID_MAX {
            let c = std_class(size);
            assert!(INFO[c].size as usize >= size, "size {size} class {c}");
            if c > 0 {
                assert!(
                    (INFO[c - 1].size as usize) < size,
                    "size {size} class {c} not smallest"
                );
            }
        }
        assert_eq!(DIRECT_STD[0], 0);
    }

    #[test]
    fn smallmid_table_covers_256_to_1024() {
        for size in 1..=TINY_MAX {
            let c = DIRECT_SM[(size + 15) >> 4] as usize;
            assert!(INFO[c].size as usize >= size);
            assert_eq!(c >= SM_FIRST, size > 224, "size {size}");
        }
    }

    #[test]
    fn spans_fit_a_superslab_and_hold_enough_blocks() {
        for (c, i) in INFO.iter().enumerate() {
            assert!(i.slabs >= 1 && i.slabs <= 16, "class {c}");
            // Spans of blocks above 64 KiB hold two (a pooled heap's empty
            // spans of such blocks are purged at thread exit; small spans
            // keep the exit cheap), the rest at least four.
            let least = if i.size as usize > 64 * 1024 { 2 } else { 4 };
            assert!(i.count >= least, "class {c} holds {}", i.count);
            assert!(i.count as usize * i.size as usize <= i.slabs as usize * SLAB_SIZE);
        }
    }

    #[test]
    fn one_product_tells_carved_block_starts() {
        for i in INFO.iter() {
            let size = i.size as u64;
            assert!(i.div_e >= 1 && i.div_e <= size, "size {size}");
            let span = i.slabs as u64 * SLAB_SIZE as u64;
            for carved in [0u64, 1, 3, i.count as u64] {
                let lim = carved * i.div_e;
                let mut off = 0u64;
                while off < span {
                    assert_eq!(
                        off.wrapping_mul(i.div_m) < lim,
                        off.is_multiple_of(size) && off / size < carved,
                        "size {size} carved {carved} off {off}"
                    );
                    off += if size <= 1024 { 1 } else { 13 };
                }
            }
        }
    }

    /// The aligned classes' test, as `superslab::init_span` lays their spans
    /// out and the free fast path applies it: the address itself times
    /// `div_m`, against `(start / size + carved) * div_e`, exact at any
    /// address of the span, from the bottom of the address space to the top
    /// of user space.
    #[test]
    fn aligned_spans_tell_block_starts_from_the_address_alone() {
        for i in INFO.iter().filter(|i| i.size as usize <= ALIGNED_MAX) {
            let size = i.size as u64;
            let span = i.slabs as u64 * SLAB_SIZE as u64;
            for slab in [1u64, 7, 0x1234, (1 << 31) - 16, (1 << 31) - 1] {
                let first = slab << SLAB_SHIFT;
                let start = first.next_multiple_of(size);
                let count = (first + span - start) / size;
                assert!(
                    count + 1 >= i.count as u64,
                    "size {size}: padding costs at most one block"
                );
                for carved in [0, 1, count] {
                    let lim = (start / size + carved) * i.div_e;
                    let mut a = first;
                    while a < first + span {
                        let k = a.wrapping_sub(start) / size;
                        assert_eq!(
                            a.wrapping_mul(i.div_m) < lim,
                            a >= start && (a - start).is_multiple_of(size) && k < carved,
                            "size {size} first {first:#x} carved {carved} a {a:#x}"
                        );
                        a += if carved == 1 { 1 } else { 5 };
                    }
                }
            }
        }
    }

    #[test]
    fn divisibility_constant_tells_block_starts_exactly() {
        for i in INFO.iter() {
            let span = i.slabs as u64 * SLAB_SIZE as u64;
            let mut off = 0u64;
            while off < span {
                let is_start = off.wrapping_mul(i.div_m) < i.div_m;
                assert_eq!(
                    is_start,
                    off.is_multiple_of(i.size as u64),
                    "size {} off {off}",
                    i.size
                );
                off += if i.size <= 1024 { 1 } else { 7 };
            }
        }
    }

    #[test]
    fn aligned_classes_are_multiples_of_the_alignment() {
        let mut align = 16;
        while align <= SLAB_SIZE {
            for size in [1, align - 1, align, align + 1, 3 * align] {
                if let Some(c) = class_for_aligned(size, align) {
                    assert_eq!(INFO[c].size as usize % align, 0);
                    assert!(INFO[c].size as usize >= size);
                } else {
                    assert!(size.max(align) > MID_MAX / 2, "size {size} align {align}");
                }
            }
            align *= 2;
        }
    }
}
