# hub/package.mk - what Firewatch says to the rest of the world, and how it
# is installed:
#   - CAP 1.2 alerts and their Atom feed (hub/cap.c) and Home Assistant MQTT
#     discovery (hub/hadisc.c), pure modules the daemon links as
#     $(HUB_CAP_OBJS) with $(HUB_CAP_LIBS), and their suites (tests/cap/);
#   - `install-data`: man pages, example configs, systemd units, udev rule
#     and the dashboard's files (`install` depends on it);
#   - `deb`: the firewatch-hub and firewatch-node Debian packages, built with
#     dpkg-deb from staged trees under build/deb/ (packaging/debian/ holds
#     their control files and maintainer scripts), natively or cross-built
#     with CROSS_SYSROOT. docs/packaging.md.
#
# Read after hub/module.mk (name order). The generic test rule in
# tests/module.mk links every .o prerequisite, so objects are named as
# prerequisites only.
HUB_CAP_SRCS := hub/cap.c hub/hadisc.c
HUB_CAP_HDRS := hub/cap.h hub/hadisc.h
HUB_CAP_OBJS := $(HUB_CAP_SRCS:%.c=$(OUT)/obj/%.o)
HUB_CAP_LIBS := $(LIB_CJSON) -lm

$(OUT)/obj/tests/cap/%.o: ALL_CFLAGS += -Ihub -Itests/broker

CAP_TESTS := $(OUT)/tests/cap/test_cap $(OUT)/tests/cap/test_hadisc
$(OUT)/tests/cap/test_cap: $(OUT)/obj/hub/cap.o
$(OUT)/tests/cap/test_hadisc: $(OUT)/obj/hub/hadisc.o $(OUT)/obj/tests/broker/client.o
$(CAP_TESTS): TEST_EXTRA_LIBS = $(LIB_PAHO) $(HUB_CAP_LIBS)

TEST_BINS += $(CAP_TESTS)
# test_cross.sh: the node cross-built for arm64 and armhf (build/cross-*);
# test_deb_install.sh: both packages installed in a debootstrapped bookworm
# and their services started (build/rel-deb, build/deb-install; root only).
TEST_SCRIPTS += tests/cap/test_package.sh tests/cap/test_cross.sh tests/cap/test_deb_install.sh
CHECK_SRCS += $(HUB_CAP_SRCS) $(HUB_CAP_HDRS) tests/cap/test_cap.c tests/cap/test_hadisc.c

# ---- install-data -------------------------------------------------------------
# Paths follow the FHS and Debian: units in /lib/systemd/system (Debian 12 is
# not merged-/usr only), configs in /etc whatever PREFIX is.
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
UDEVRULESDIR ?= /lib/udev/rules.d
MANDIR ?= $(PREFIX)/share/man
WEBDIR ?= $(PREFIX)/share/firewatch/web

MAN5_PAGES := docs/man/firewatch-hub.conf.5 docs/man/firewatch-node.conf.5
MAN8_PAGES := docs/man/firewatch-hub.8 docs/man/firewatch-node.8 docs/man/firewatchctl.8
EXAMPLE_CONFS := hub/hub.conf.example firmware/node.conf.example
SYSTEMD_UNITS := hub/firewatch-hub.service firmware/firewatch-node.service
UDEV_RULES := packaging/debian/60-firewatch-gpio.rules

# The units in the tree name /usr/local; the installed ones name PREFIX.
UNIT_SED := s|/usr/local/bin/|$(PREFIX)/bin/|g; s|/usr/local/share/|$(PREFIX)/share/|g

.PHONY: install-data deb

# Copies the dashboard (hub/web, subdirectories included) into $(1).
define install_web
	install -d $(1)
	@cd hub/web && find . -type f ! -name '.*' | LC_ALL=C sort | while read -r f; do \
	  install -D -m 0644 "$$f" "$(abspath $(1))/$${f#./}" || exit 1; \
	done
endef

install-data:
	install -d $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(MAN5_PAGES) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(MAN8_PAGES) $(DESTDIR)$(MANDIR)/man8/
	install -d $(DESTDIR)$(SYSCONFDIR)/firewatch
	install -m 0644 $(EXAMPLE_CONFS) $(DESTDIR)$(SYSCONFDIR)/firewatch/
	install -d $(DESTDIR)$(UNITDIR)
	@for u in $(SYSTEMD_UNITS); do \
	  echo "sed '$(UNIT_SED)' $$u > $(DESTDIR)$(UNITDIR)/$${u##*/}"; \
	  sed '$(UNIT_SED)' $$u > $(DESTDIR)$(UNITDIR)/$${u##*/} && chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	install -d $(DESTDIR)$(UDEVRULESDIR)
	install -m 0644 $(UDEV_RULES) $(DESTDIR)$(UDEVRULESDIR)/
	$(call install_web,$(DESTDIR)$(WEBDIR))
	@echo "install-data: $(DESTDIR)$(WEBDIR) ($$(find hub/web -type f ! -name '.*' | wc -l) files)"

# ---- deb ----------------------------------------------------------------------
# make deb [DEB_ARCH=arm64 CC=aarch64-linux-gnu-gcc ...]: release binaries
# from $(OUT), staged with PREFIX=/usr, packed by dpkg-deb as root:root
# (--root-owner-group: no fakeroot needed). DEB_ARCH must match the
# compiler's target; the test suite checks it against the binaries.
DEB_VERSION ?= 0.1.0
DEB_ARCH ?= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_DIR := build/deb
DEB_HUB := $(DEB_DIR)/firewatch-hub_$(DEB_VERSION)_$(DEB_ARCH).deb
DEB_NODE := $(DEB_DIR)/firewatch-node_$(DEB_VERSION)_$(DEB_ARCH).deb
DEB_HUB_BINS := $(OUT)/bin/firewatch-hub $(OUT)/bin/firewatchctl
DEB_NODE_BINS := $(OUT)/bin/firewatch-node
DEB_SRC := packaging/debian

# Stages one package: $(1) name, $(2) binaries, $(3) man5 pages, $(4) man8
# pages, $(5) example config, $(6) unit. Then control files and scripts.
define deb_stage
	rm -rf $(DEB_DIR)/$(1) && mkdir -p $(DEB_DIR)/$(1)/DEBIAN
	install -d $(DEB_DIR)/$(1)/usr/bin $(DEB_DIR)/$(1)/usr/share/man/man5 $(DEB_DIR)/$(1)/usr/share/man/man8 \
	  $(DEB_DIR)/$(1)/etc/firewatch $(DEB_DIR)/$(1)/lib/systemd/system $(DEB_DIR)/$(1)/usr/share/doc/$(1)
	install -m 0755 -s --strip-program=$(or $(STRIP),strip) $(2) $(DEB_DIR)/$(1)/usr/bin/
	for p in $(3); do gzip -9n < $$p > $(DEB_DIR)/$(1)/usr/share/man/man5/$${p##*/}.gz; done
	for p in $(4); do gzip -9n < $$p > $(DEB_DIR)/$(1)/usr/share/man/man8/$${p##*/}.gz; done
	install -m 0644 $(5) $(DEB_DIR)/$(1)/etc/firewatch/
	sed 's|/usr/local/bin/|/usr/bin/|g; s|/usr/local/share/|/usr/share/|g' $(6) > $(DEB_DIR)/$(1)/lib/systemd/system/$(notdir $(6))
	chmod 0644 $(DEB_DIR)/$(1)/lib/systemd/system/$(notdir $(6))
	install -m 0644 $(DEB_SRC)/copyright $(DEB_DIR)/$(1)/usr/share/doc/$(1)/copyright
	gzip -9n < $(DEB_SRC)/changelog > $(DEB_DIR)/$(1)/usr/share/doc/$(1)/changelog.gz
	for s in postinst prerm postrm; do install -m 0755 $(DEB_SRC)/$(1).$$s $(DEB_DIR)/$(1)/DEBIAN/$$s; done
	install -m 0644 $(DEB_SRC)/$(1).conffiles $(DEB_DIR)/$(1)/DEBIAN/conffiles
endef

# Writes DEBIAN/control (with the staged size) and DEBIAN/md5sums of
# package $(1), then builds it into $(2).
define deb_finish
	sed -e 's|@VERSION@|$(DEB_VERSION)|' -e 's|@ARCH@|$(DEB_ARCH)|' \
	  -e "s|@SIZE@|$$(du -sk --exclude=DEBIAN $(DEB_DIR)/$(1) | cut -f1)|" \
	  $(DEB_SRC)/$(1).control > $(DEB_DIR)/$(1)/DEBIAN/control
	cd $(DEB_DIR)/$(1) && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort \
	  | xargs -d '\n' md5sum > DEBIAN/md5sums
	dpkg-deb --root-owner-group -Zxz --build $(DEB_DIR)/$(1) $(2)
endef

$(DEB_HUB): $(DEB_HUB_BINS) $(MAN5_PAGES) $(MAN8_PAGES) $(wildcard $(DEB_SRC)/*) hub/hub.conf.example \
            hub/firewatch-hub.service $(wildcard hub/web/* hub/web/*/*)
	$(call deb_stage,firewatch-hub,$(DEB_HUB_BINS),docs/man/firewatch-hub.conf.5,\
	  docs/man/firewatch-hub.8 docs/man/firewatchctl.8,hub/hub.conf.example,hub/firewatch-hub.service)
	$(call install_web,$(DEB_DIR)/firewatch-hub/usr/share/firewatch/web)
	install -m 0644 $(wildcard docs/hub.md docs/cap.md docs/home-assistant.md docs/packaging.md) \
	  $(DEB_DIR)/firewatch-hub/usr/share/doc/firewatch-hub/
	$(call deb_finish,firewatch-hub,$@)

$(DEB_NODE): $(DEB_NODE_BINS) $(MAN5_PAGES) $(MAN8_PAGES) $(wildcard $(DEB_SRC)/*) firmware/node.conf.example \
             firmware/firewatch-node.service
	$(call deb_stage,firewatch-node,$(DEB_NODE_BINS),docs/man/firewatch-node.conf.5,docs/man/firewatch-node.8,\
	  firmware/node.conf.example,firmware/firewatch-node.service)
	install -D -m 0644 $(UDEV_RULES) $(DEB_DIR)/firewatch-node/lib/udev/rules.d/$(notdir $(UDEV_RULES))
	install -m 0644 $(wildcard docs/firmware.md docs/packaging.md) $(DEB_DIR)/firewatch-node/usr/share/doc/firewatch-node/
	$(call deb_finish,firewatch-node,$@)

deb: $(DEB_HUB) $(DEB_NODE)
	@ls -l $(DEB_HUB) $(DEB_NODE)

# Cross builds (docs/packaging.md, tests/cap/test_cross.sh): CROSS_SYSROOT
# names a directory holding the target's library packages unpacked
# (scripts/deps.sh makes build/cross-sysroot/arm64 and armhf). Its headers
# come before the build machine's /usr/include, and the linker finds the
# target's libraries, and the ones they need, in its multiarch directory.
ifneq ($(CROSS_SYSROOT),)
CROSS_TRIPLET := $(shell $(CC) -dumpmachine)
ALL_CFLAGS += -isystem $(CROSS_SYSROOT)/usr/include
ALL_LDFLAGS += -L$(CROSS_SYSROOT)/usr/lib/$(CROSS_TRIPLET) -Wl,-rpath-link,$(CROSS_SYSROOT)/usr/lib/$(CROSS_TRIPLET)
endif

# One package only (a cross build of the node needs none of the hub's libraries).
.PHONY: deb-hub deb-node
deb-hub: $(DEB_HUB)
deb-node: $(DEB_NODE)
