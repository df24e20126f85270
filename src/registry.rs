//! The registry: from any address to what hakmem keeps there, in O(1).
//!
//! One byte per 2 MiB chunk of the 47-bit address space says whether the chunk
//! is a SuperSlab (whose header is then at `addr & !(2 MiB - 1)`, validated by
//! its magic) or part of a large block, or foreign. Looking up a pointer is a
//! shift and a byte load: no scan, no syscall, and a wild or stack pointer is
//! told from hakmem's own without touching the memory it points to. Writers
//! are the SuperSlab and large-block layers when they map or unmap. Calls
//! nothing.

use core::sync::atomic::{AtomicU8, Ordering::*};

pub const CHUNK_SHIFT: usize = 21;
pub const CHUNK_SIZE: usize = 1 << CHUNK_SHIFT;
const CHUNKS: usize = 1 << (47 - CHUNK_SHIFT);

pub const FOREIGN: u8 = 0;
pub const SUPERSLAB: u8 = 1;
/// First chunk of a large block (its header is at the chunk's start).
pub const LARGE: u8 = 2;
/// Later chunks of a large block.
pub const LARGE_TAIL: u8 = 3;

extern "C" {
    // Defined in src/tls.c (hidden): `unsigned char hakmem_registry[1 << 26]`,
    // 64 MiB of zero-filled .bss of which only the pages covering hakmem's
    // own mappings are ever touched. A C definition costs nothing to compile;
    // a Rust one is const-evaluated byte by byte.
    static hakmem_registry: [AtomicU8; CHUNKS];
}

#[inline(always)]
fn table() -> &'static [AtomicU8; CHUNKS] {
    #[cfg(target_arch = "x86_64")]
    {
        let p: *const [AtomicU8; CHUNKS];
        // SAFETY: a RIP-relative address of a hidden symbol of this object
        // (no GOT load, as a plain extern static would need).
        unsafe {
            core::arch::asm!(
                "lea {p}, [rip + {t}]",
                p = out(reg) p,
                t = sym hakmem_registry,
                options(pure, nomem, nostack, preserves_flags),
            );
            &*p
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: a zero-initialised static array of bytes, valid for the whole
    // process; AtomicU8 has the layout of u8.
    unsafe {
        &*core::ptr::addr_of!(hakmem_registry)
    }
}

/// What lives at address `a`.
#[inline(always)]
pub fn kind(a: usize) -> u8 {
    let c = a >> CHUNK_SHIFT;
    if c < CHUNKS {
        table()[c].load(Relaxed)
    } else {
        FOREIGN
    }
}

/// The base of the SuperSlab holding `a`, if the registry says `a` is in
/// one (the free path for SuperSlabs outside the arena).
#[inline(always)]
pub fn superslab_base(a: usize) -> Option<usize> {
    (kind(a) == SUPERSLAB).then_some(a & !(CHUNK_SIZE - 1))
}

/// Mark `[base, base+len)` (base chunk-aligned): the first chunk `head`, the
/// rest `tail`.
pub fn set(base: usize, len: usize, head: u8, tail: u8) {
    let first = base >> CHUNK_SHIFT;
    let last = (base + len - 1) >> CHUNK_SHIFT;
    for c in first..=last.min(CHUNKS - 1) {
        table()[c].store(if c == first { head } else { tail }, Release);
    }
}

/// Forget `[base, base+len)` (base chunk-aligned).
pub fn clear(base: usize, len: usize) {
    set(base, len, FOREIGN, FOREIGN);
}

/// The head chunk of the large block containing `a` (a LARGE or LARGE_TAIL
/// address): walks back chunk by chunk, only on slow paths.
pub fn large_head(a: usize) -> usize {
    let mut c = a >> CHUNK_SHIFT;
    while c > 0 && table()[c].load(Acquire) == LARGE_TAIL {
        c -= 1;
    }
    c << CHUNK_SHIFT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_clears_ranges() {
        let base = 0x5a5a_0000_0000usize & !(CHUNK_SIZE - 1);
        assert_eq!(kind(base), FOREIGN);
        set(base, 3 * CHUNK_SIZE + 5, LARGE, LARGE_TAIL);
        assert_eq!(kind(base + 17), LARGE);
        assert_eq!(kind(base + CHUNK_SIZE), LARGE_TAIL);
        assert_eq!(kind(base + 3 * CHUNK_SIZE + 4), LARGE_TAIL);
        assert_eq!(kind(base + 4 * CHUNK_SIZE), FOREIGN);
        assert_eq!(large_head(base + 3 * CHUNK_SIZE + 100), base);
        clear(base, 3 * CHUNK_SIZE + 5);
        for i in 0..5 {
            assert_eq!(kind(base + i * CHUNK_SIZE), FOREIGN);
        }
    }

    #[test]
    fn addresses_outside_47_bits_are_foreign() {
        assert_eq!(kind(usize::MAX), FOREIGN);
        assert_eq!(kind(1 << 47), FOREIGN);
        assert_eq!(kind(0), FOREIGN);
        assert_eq!(superslab_base(usize::MAX), None);
        assert_eq!(superslab_base((1 << 47) + 5), None);
    }

    #[test]
    fn superslab_base_is_the_chunk_base_of_superslab_chunks_only() {
        let base = 0x3a3a_0000_0000usize & !(CHUNK_SIZE - 1);
        set(base, CHUNK_SIZE, SUPERSLAB, SUPERSLAB);
        assert_eq!(superslab_base(base), Some(base));
        assert_eq!(superslab_base(base + 12345), Some(base));
        assert_eq!(superslab_base(base + CHUNK_SIZE - 1), Some(base));
        assert_eq!(superslab_base(base + CHUNK_SIZE), None);
        set(base, CHUNK_SIZE, LARGE, LARGE_TAIL);
        assert_eq!(superslab_base(base + 12345), None);
        clear(base, CHUNK_SIZE);
        assert_eq!(superslab_base(base + 12345), None);
    }
}
