//! A spin lock for allocator-internal state.
//!
//! std's and parking_lot's mutexes may allocate on contention (parking_lot's
//! parking table), which would re-enter malloc; this lock is one atomic word,
//! spins briefly, then yields. It guards only cold, short critical sections
//! (SuperSlab cache, heap pool, large-block cache, metadata arena). It may call
//! the OS layer only.

use core::sync::atomic::{AtomicU32, Ordering};

pub struct SpinLock {
    state: AtomicU32,
}

impl Default for SpinLock {
    fn default() -> Self {
        Self::new()
    }
}

impl SpinLock {
    pub const fn new() -> Self {
        SpinLock {
            state: AtomicU32::new(0),
        }
    }

    #[inline]
    pub fn try_lock(&self) -> bool {
        self.state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    pub fn lock(&self) {
        let mut spins = 0u32;
        while !self.try_lock() {
            while self.state.load(Ordering::Relaxed) != 0 {
                spins += 1;
                if spins < 64 {
                    core::hint::spin_loop();
                } else {
                    crate::os::yield_now();
                }
            }
        }
    }

    #[inline]
    pub fn unlock(&self) {
        self.state.store(0, Ordering::Release);
    }

    /// Reset in a fork child, where the holder no longer exists.
    pub fn reset(&self) {
        self.state.store(0, Ordering::Relaxed);
    }

    pub fn guard(&self) -> Guard<'_> {
        self.lock();
        Guard(self)
    }
}

pub struct Guard<'a>(&'a SpinLock);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// A cell for process-global allocator state whose synchronisation is done by
/// hand (a SpinLock, or single-threaded initialisation before publication).
#[repr(transparent)]
pub struct Racy<T>(pub core::cell::UnsafeCell<T>);

// SAFETY: every user of a Racy documents the lock or protocol that serialises
// its accesses.
unsafe impl<T> Sync for Racy<T> {}

impl<T> Racy<T> {
    pub const fn new(v: T) -> Self {
        Racy(core::cell::UnsafeCell::new(v))
    }
    #[inline(always)]
    pub fn get(&self) -> *mut T {
        self.0.get()
    }
}
