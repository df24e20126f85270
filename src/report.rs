//! Messages to stderr without allocating: fatal misuse reports (then abort),
//! internal errors (a panic inside the library) and configuration warnings.
//! Text is assembled in a fixed stack buffer and written with one `write(2)`
//! call. May call libc, and std only to install the panic hook.

pub struct Msg {
    buf: [u8; 512],
    len: usize,
}

impl Default for Msg {
    fn default() -> Self {
        Self::new()
    }
}

impl Msg {
    pub const fn new() -> Self {
        Msg {
            buf: [0; 512],
            len: 0,
        }
    }

    pub fn s(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        for &c in b {
            if self.len < self.buf.len() - 1 {
                self.buf[self.len] = c;
                self.len += 1;
            }
        }
        self
    }

    /// A pointer as printf's "%p" prints it: 0x and lowercase hex, or "(nil)".
    pub fn ptr(&mut self, p: usize) -> &mut Self {
        if p == 0 {
            return self.s("(nil)");
        }
        let mut tmp = [0u8; 18];
        let mut n = 0;
        let mut v = p;
        while v != 0 {
            tmp[n] = b"0123456789abcdef"[v & 15];
            v >>= 4;
            n += 1;
        }
        self.s("0x");
        while n > 0 {
            n -= 1;
            let c = tmp[n];
            self.bytes(&[c]);
        }
        self
    }

    pub fn dec(&mut self, v: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        let mut n = 0;
        let mut v = v;
        loop {
            tmp[n] = b'0' + (v % 10) as u8;
            v /= 10;
            n += 1;
            if v == 0 {
                break;
            }
        }
        while n > 0 {
            n -= 1;
            let c = tmp[n];
            self.bytes(&[c]);
        }
        self
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn emit(&mut self) {
        self.buf[self.len] = b'\n';
        // SAFETY: writing our own initialised buffer to fd 2.
        unsafe { libc::write(2, self.buf.as_ptr().cast(), self.len + 1) };
    }
}

/// Report a detected heap misuse and stop the program:
/// `hakmem: free(0x...): double free (block size 64 bytes); aborting`.
#[cold]
#[inline(never)]
pub fn misuse(op: &str, p: usize, what: &str, block_size: usize) -> ! {
    let mut m = Msg::new();
    m.s("hakmem: ").s(op).s("(").ptr(p).s("): ").s(what);
    if block_size != 0 {
        m.s(" (block size ").dec(block_size as u64).s(" bytes)");
    }
    m.s("; aborting");
    m.emit();
    // SAFETY: abort never returns; it raises SIGABRT.
    unsafe { libc::abort() }
}

/// Make a panic inside the library (a broken internal invariant, such as a
/// bounds check on metadata the program overwrote) print one hakmem line and
/// abort. std's default hook may allocate, which would re-enter malloc,
/// perhaps with a hakmem lock held. The hook is a closure without captures,
/// so boxing it allocates nothing; the panic message is never formatted.
/// This library's copy of std is its own: a Rust host program keeps its hook.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let mut m = Msg::new();
        m.s("hakmem: internal error");
        if let Some(l) = info.location() {
            m.s(" at ").s(l.file()).s(":").dec(l.line() as u64);
        }
        m.s(" (heap metadata overwritten?); aborting");
        m.emit();
        // SAFETY: abort never returns; it raises SIGABRT.
        unsafe { libc::abort() }
    }));
}
