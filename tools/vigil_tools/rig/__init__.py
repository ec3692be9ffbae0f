"""The QEMU rig: a board booted under QEMU with emulated hardware driven by the real Linux drivers.

`spec` reads a board's kernel pin (kernel.toml) and emulated hardware (rig.toml); `debs` fetches
and unpacks the pinned Debian packages into the cache; `gpio_sim` builds gpio-sim.ko, which Debian
does not ship; `canary` assembles a busybox initramfs that reports what the guest sees; `netns`
and `qemu` run the machine; `command` is `vigil rig up|down|console|monitor`.
"""
