# The only commands a newcomer needs: make run, make test. Both install what they need and are
# safe to run again.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_STAMP := $(VENV)/.installed
APT_STAMP := $(VENV)/.apt-installed
# Debian packages the tests drive as real peers: curl (digest client), chrony (NTP server),
# iproute2 (network namespaces for discovery tests), ffmpeg and GStreamer (RTSP clients),
# iputils-arping (the IP conflict check's duplicate address probe, as on the board), rauc and
# squashfs-tools (the sim board's upgrades check real bundles), dbus-daemon (a private bus for
# the RAUC service in the rauc driver's tests), chromium (the web page's browser tests, driven by
# Playwright with this browser: Playwright downloads none).
APT_PACKAGES := curl chrony iproute2 iputils-arping ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav rauc squashfs-tools dbus-daemon \
	cryptsetup-bin chromium
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
# The web page (issue 8): web/ (npm, from package-lock.json) built by esbuild into the package,
# firmware/vigil/web/dist, so the wheel and the board image ship it. Rebuilt when a source changes.
WEB_DIST := firmware/vigil/web/dist
WEB_STAMP := $(WEB_DIST)/.built
WEB_MODULES_STAMP := web/node_modules/.installed
WEB_SOURCES := web/build.mjs $(wildcard web/src/*)
DATA_DIR ?= .vigil-data
# Board images, bundles and the QEMU rig (issue 7): the host tools they run. Downloads (Debian
# packages, wheels, kernel sources) are cached here; nothing depends on the cache being there.
IMAGE_APT_PACKAGES := mmdebstrap genimage rauc squashfs-tools qemu-system-x86 qemu-system-arm \
	qemu-user-static ovmf qemu-efi-aarch64 grub-efi-amd64-bin grub-common dosfstools mtools socat \
	i2c-tools gpiod u-boot-qemu u-boot-tools arch-test fdisk libubootenv-tool
VIGIL_CACHE ?= $(HOME)/.cache/vigil
export VIGIL_CACHE
IMAGE_APT_STAMP := $(VENV)/.apt-image-installed
BOARD ?= qemu-x86_64
VIGILD_ARGS ?=
# `make run RUN_BOARD=sim-dome`: the simulated PTZ dome instead of the fixed camera.
RUN_BOARD ?= sim

.PHONY: setup run test lint clean

setup: $(PIP_STAMP) $(APT_STAMP) $(WEB_STAMP)

$(WEB_MODULES_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends nodejs npm; }
	cd web && npm ci --no-audit --no-fund
	touch $@

$(WEB_STAMP): $(WEB_MODULES_STAMP) $(WEB_SOURCES)
	cd web && npm run build
	touch $@

$(PIP_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# Installs the Debian packages among $(1) that are missing (with sudo when not root).
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi
	mkdir -p $(VENV) && touch $@
endef

$(APT_STAMP): Makefile
	$(call apt_install,$(APT_PACKAGES))

run: setup
	$(BIN)/vigild --board $(RUN_BOARD) --data-dir $(DATA_DIR) $(VIGILD_ARGS)

# The suite. The rig (the board image built from this tree and its scenario in QEMU, about 45
# minutes more on 2 cores) is `make rig-test`: not yet part of `make test`, see README.
# Three workers, a test file each at a time (pytest-xdist): the tests mostly wait on devices,
# sockets and clients, so one worker keeps the 2 cores about half busy; three take 13 minutes
# where one takes 28. More workers starve the simulated cameras' encoders of CPU.
TEST_WORKERS ?= 3
# The image tools too: the disk-image, flash and boot-loader tests drive them (sfdisk, mtools,
# grub-mkstandalone, U-Boot's tools, QEMU's firmware), and a fresh machine has none of them.
test: image-setup
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(DATA_DIR) .pytest_cache .ruff_cache

# `make bench` (not part of `make test`): Vigil's RTSP fan-out against gst-rtsp-server in the
# same run (tests/bench/). The peer server runs on the system Python, which needs PyGObject and
# gst-rtsp-server's typelib; the ffmpeg/GStreamer packages above come with `setup`. Then the
# recording bench (tests/bench/bench_record.py), which needs root: loop devices, mkfs, mount;
# then the video detectors' CPU against FFmpeg's analysis filters (tests/bench/bench_detect.py),
# motion-to-alertStream latency against ffmpeg's scdet over RTSP (tests/bench/bench_events.py),
# the OSD's drawing against FFmpeg's drawtext (tests/bench/bench_osd.py), and the web page's
# weight and time to interactive in Chromium (tests/bench/bench_web.py).
BENCH_APT_PACKAGES := gir1.2-gst-rtsp-server-1.0 python3-gi
BENCH_APT_STAMP := $(VENV)/.apt-bench-installed

.PHONY: bench bench-setup

bench-setup: setup $(BENCH_APT_STAMP)

$(BENCH_APT_STAMP): Makefile
	$(call apt_install,$(BENCH_APT_PACKAGES))

bench: bench-setup
	$(BIN)/python -m tests.bench
	$(BIN)/python -m tests.bench.bench_record
	$(BIN)/python -m tests.bench.bench_detect
	$(BIN)/python -m tests.bench.bench_events
	$(BIN)/python -m tests.bench.bench_osd
	$(BIN)/python -m tests.bench.bench_web

# `make image BOARD=qemu-x86_64`: the board's root squashfs and disk image in build/$(BOARD)/
# (rootfs.squashfs, disk.img), through `vigil image build`.
.PHONY: image image-setup

image-setup: setup $(IMAGE_APT_STAMP)

$(IMAGE_APT_STAMP): Makefile
	$(call apt_install,$(IMAGE_APT_PACKAGES))

# A foreign board's root runs its packages' scripts through qemu-user: the kernel must hand arm64
# binaries to it (binfmt_misc, which qemu-user-static registers where systemd runs at boot).
image: image-setup
	$(if $(filter qemu-aarch64 rpi4,$(BOARD)),arch-test arm64 >/dev/null || { \
	  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; \
	  update-binfmts --enable qemu-aarch64; })
	$(BIN)/vigil image build --board $(BOARD)

# `make bundle BOARD=qemu-x86_64`: build/$(BOARD)/rootfs.squashfs (built first if missing) signed
# into build/$(BOARD)/vigil-$(BOARD)-<version>.raucb with the development key in build/keys/.
.PHONY: bundle

bundle: image-setup
	test -f build/$(BOARD)/rootfs.squashfs || $(BIN)/vigil image rootfs --board $(BOARD)
	$(BIN)/vigil bundle --board $(BOARD)

# `make rig-test`: the board's image (make image) booted in the QEMU rig: tests/rig (the canary
# guest proving the emulated hardware, the board's disk booting through GRUB, a flashed card
# booting, and the whole scenario on the running image: SADP, activation, RTSP, recording, alarm,
# PTZ, day/night, power cut, A/B upgrade and rollback, card pull).
# `make rig-test BOARD=qemu-aarch64` runs that board's scenario only
# (tests/rig/test_rig_aarch64.py: build, boot, discover, stream), which the other boards' run
# leaves out. -s shows the figures (boot times, sizes); the guests' consoles are kept in
# build/test-artifacts/rig/.
.PHONY: rig-test

RIG_TESTS := -s $(if $(filter qemu-aarch64,$(BOARD)),tests/rig/test_rig_aarch64.py,tests/rig \
	--ignore=tests/rig/test_rig_aarch64.py)

rig-test: image
	$(BIN)/pytest -q $(RIG_TESTS)
