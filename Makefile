# hakmem: build, test, benchmark and install libhakmem.so.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCDIR ?= $(PREFIX)/include
CARGO  ?= cargo
SO     := target/release/libhakmem.so

.PHONY: all build test bench bench-deps install uninstall clean

all: build

build:
	$(CARGO) build --release
	@echo "built $(SO) and include/hakmem.h"

# Every test: Rust unit tests of each layer, the C programs in ffi-tests/ (linked
# with -lhakmem and under LD_PRELOAD), and real programs under LD_PRELOAD.
test: build
	$(CARGO) test --release
	scripts/test-programs

# The benchmark comparison against glibc and every installed peer.
bench: build
	scripts/bench

bench-deps:
	scripts/install-deps bench

install: build
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 755 $(SO) $(DESTDIR)$(LIBDIR)/libhakmem.so
	install -m 644 include/hakmem.h $(DESTDIR)$(INCDIR)/hakmem.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCDIR@|$(INCDIR)|g' \
	    hakmem.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/hakmem.pc
	@echo "installed into $(DESTDIR)$(PREFIX)"

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libhakmem.so $(DESTDIR)$(INCDIR)/hakmem.h $(DESTDIR)$(LIBDIR)/pkgconfig/hakmem.pc

clean:
	$(CARGO) clean
