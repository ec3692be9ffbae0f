"""Board images: the root file system (`rootfs`: Debian packages by mmdebstrap, Vigil in a venv,
the overlay, a squashfs), pinned by lock files (`lock`), and what is built on top of it."""
