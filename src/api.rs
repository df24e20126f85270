//! The hakmem-specific C API (declared in include/hakmem.h).

/// The library version as a NUL-terminated string, e.g. "0.1.0".
#[no_mangle]
pub extern "C" fn hakmem_version() -> *const core::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
