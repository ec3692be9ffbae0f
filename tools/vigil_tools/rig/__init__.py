"""The QEMU rig: a board booted under QEMU with emulated hardware driven by the real Linux drivers.

`spec` reads a board's kernel pin (kernel.toml) and emulated hardware (rig.toml); `debs` fetches
and unpacks the pinned Debian packages into the cache; `gpio_sim` builds gpio-sim.ko, which Debian
does not ship, and the configfs setup of its lines; `modules` orders module loading; `canary`
assembles a busybox initramfs that reports what the guest sees; `accel` picks TCG or KVM; `netns`
and `dhcp` make the rig's network, `qemu` runs the machine and `qmp` talks to its monitor;
`guest_shell` and `hardware` act inside the guest through its console; `terminal` joins a socket
to the user's terminal; `command` is `vigil rig up|down|console|monitor|exec`.
"""
