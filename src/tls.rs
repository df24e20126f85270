//! The thread's heap pointer: one initial-exec TLS slot defined in src/tls.c;
//! and the thread pointer itself (`%fs:0`), by which heaps know their owner.
//!
//! On x86-64 a read is two instructions (load the slot's TP offset from the
//! GOT, load through %fs) instead of a `__tls_get_addr` call. Elsewhere the C
//! accessors are called. The slot starts as the static empty heap, so it is
//! never null. Calls nothing but the shim.

use crate::heap::Heap;

extern "C" {
    // The TLS symbol itself: only ever named as an asm `sym` operand.
    #[allow(dead_code)]
    static hakmem_tls_heap: u8;
    #[allow(dead_code)]
    fn hakmem_tls_get() -> *mut Heap;
    #[allow(dead_code)]
    fn hakmem_tls_addr() -> *mut u8;
    #[allow(dead_code)]
    fn hakmem_tls_set(h: *mut Heap);
}

/// The calling thread's heap (the empty heap until the thread's first
/// allocation slow path, and again after the thread released it).
#[inline(always)]
pub fn heap() -> *mut Heap {
    #[cfg(target_arch = "x86_64")]
    {
        let h: *mut Heap;
        // SAFETY: hakmem_tls_heap is an initial-exec TLS variable of this
        // object; GOTTPOFF yields its offset from the thread pointer, and the
        // %fs-relative load reads the calling thread's copy.
        unsafe {
            core::arch::asm!(
                "mov {h}, qword ptr [rip + {slot}@GOTTPOFF]",
                "mov {h}, qword ptr fs:[{h}]",
                h = out(reg) h,
                slot = sym hakmem_tls_heap,
                options(nostack, preserves_flags, readonly, pure),
            );
        }
        h
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: plain C accessor of the thread's slot.
    unsafe {
        hakmem_tls_get()
    }
}

/// The calling thread's thread pointer (its TCB address, `%fs:0` on
/// x86-64): unique among live threads, and one instruction to read. Heaps
/// record their owner's (see `Heap::tp`).
#[inline(always)]
pub fn thread_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let t: usize;
        // SAFETY: the x86-64 TLS ABI keeps the thread pointer itself at
        // %fs:0; reading it has no side effect.
        unsafe {
            core::arch::asm!(
                "mov {t}, qword ptr fs:[0]",
                t = out(reg) t,
                options(nostack, preserves_flags, readonly, pure),
            );
        }
        t
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // Elsewhere: the address of the thread's slot, as unique.
        // SAFETY: plain C accessor of the thread's slot.
        unsafe { hakmem_tls_addr() as usize }
    }
}

/// Whether `t` is the calling thread's thread pointer: on x86-64 one
/// compare against `%fs:0` and a jump, with no register to load it into.
#[inline(always)]
pub fn is_thread_pointer(t: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: a compare with %fs:0 (see `thread_pointer`) and a jump to
        // the label; no other effect.
        unsafe {
            core::arch::asm!(
                "cmp {t}, qword ptr fs:[0]",
                "jne {other}",
                t = in(reg) t,
                other = label { return false; },
                options(nostack, readonly),
            );
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        t == thread_pointer()
    }
}

/// Point the calling thread's slot at `h`.
#[inline]
pub fn set_heap(h: *mut Heap) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `heap`, writing the calling thread's copy of the slot.
    unsafe {
        core::arch::asm!(
            "mov {t}, qword ptr [rip + {slot}@GOTTPOFF]",
            "mov qword ptr fs:[{t}], {h}",
            t = out(reg) _,
            h = in(reg) h,
            slot = sym hakmem_tls_heap,
            options(nostack, preserves_flags),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: plain C accessor of the thread's slot.
    unsafe {
        hakmem_tls_set(h)
    }
}
