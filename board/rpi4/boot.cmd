# Vigil rpi4: A/B boot with RAUC's U-Boot scheme (RAUC manual, "U-Boot"), compiled to boot.scr
# (`mkimage -A arm64 -T script -C none -d boot.cmd boot.scr`) and found by U-Boot's distro boot
# on the first partition of the SD card, which sets ${devtype} ${devnum} ${distro_bootpart}.
#
#   BOOT_ORDER="A B"   slots by priority (RAUC's mark-active puts a slot first)
#   BOOT_A_LEFT=3      boots slot A may still try; each boot takes one before starting the
#   BOOT_B_LEFT=0      kernel, RAUC's mark-good (vigild healthy) sets it back to 3, mark-bad to 0
#
# The state lives in vigil.env on this partition, a U-Boot environment file of 0x4000 bytes
# (CRC32 + variables) that this script imports and exports itself, and that RAUC reads and writes
# on Linux with fw_printenv/fw_setenv (/etc/fw_env.config names /boot/efi/vigil.env). It is not
# U-Boot's own environment, and not named like it: Debian's rpi_arm64 build loads its own from
# uboot.env on "mmc 0:1" at start, and a uboot.env holding only these three variables there
# would become U-Boot's whole environment (no bootcmd: U-Boot would stop at its prompt).
# Which controller U-Boot calls mmc 0 depends on the device tree besides (the SD card is emmc2,
# the second SD controller), so the script uses the device it was itself loaded from.
#
# A slot's kernel and initramfs are <slot>/vmlinuz and <slot>/initrd.img on this partition
# (Debian's U-Boot cannot read squashfs): a slot whose files are missing (B before the first
# bundle, or a bundle whose files RAUC's handler has not finished writing) is passed over.
# With no slot left, RAUC's example resets both counters and starts again (a slot marked bad
# gets new tries rather than the camera never booting).

setenv vigil_disk "${devtype} ${devnum}:${distro_bootpart}"
setenv vigil_env_size 0x4000
# U-Boot's own kernel address (rpi_arm64: 0x00080000) and the initramfs 64 MiB above it: U-Boot's
# ramdisk_addr_r (0x02700000) leaves only 38 MiB for Debian's 32 MiB kernel, which booti moves
# to the next 2 MiB boundary.
setenv vigil_kernel_addr ${kernel_addr_r}
setexpr vigil_initrd_addr ${kernel_addr_r} + 0x04000000

setenv BOOT_ORDER "A B"
setenv BOOT_A_LEFT 3
setenv BOOT_B_LEFT 0
if load ${vigil_disk} ${loadaddr} vigil.env; then
    env import -c ${loadaddr} ${vigil_env_size} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
fi

setenv BOOT_SLOT
for tries in 1 2; do
    for SLOT in ${BOOT_ORDER}; do
        if test -z "${BOOT_SLOT}"; then
            if test "${SLOT}" = "A" && test ${BOOT_A_LEFT} -gt 0 && test -e ${vigil_disk} A/vmlinuz; then
                setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
                setenv BOOT_SLOT A
                setenv vigil_root rootfs-a
            elif test "${SLOT}" = "B" && test ${BOOT_B_LEFT} -gt 0 && test -e ${vigil_disk} B/vmlinuz; then
                setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
                setenv BOOT_SLOT B
                setenv vigil_root rootfs-b
            fi
        fi
    done
    if test -z "${BOOT_SLOT}"; then
        echo "Vigil: no slot has boots left; giving both new tries"
        setenv BOOT_A_LEFT 3
        setenv BOOT_B_LEFT 3
    fi
done
if test -z "${BOOT_SLOT}"; then
    echo "Vigil: no slot has a kernel on ${vigil_disk}; restarting"
    sleep 5
    reset
fi

# No console on the UART: GPIO14/15 carry the RS-485 line to the dome (the console is HDMI).
setenv bootargs "root=PARTLABEL=${vigil_root} rootfstype=squashfs ro rootwait rauc.slot=${BOOT_SLOT} console=tty1 net.ifnames=0 panic=5"
echo "Vigil: booting slot ${BOOT_SLOT} (BOOT_ORDER=${BOOT_ORDER} A_LEFT=${BOOT_A_LEFT} B_LEFT=${BOOT_B_LEFT}): ${bootargs}"
env export -c -s ${vigil_env_size} ${loadaddr} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
fatwrite ${vigil_disk} ${loadaddr} vigil.env ${vigil_env_size}

# The firmware's device tree (Debian's, patched by the firmware), with what Debian's lacks:
# aliases that fix the I2C bus and SD card numbers (the header's I2C is /dev/i2c-1, the SD card
# /dev/mmcblk0, whatever order the drivers probe in), and vchiq's 64-byte cache lines (the
# Cortex-A72's; the upstream node says bcm2835, whose lines are 32 bytes).
fdt addr ${fdt_addr}
fdt resize 1024
fdt set /aliases i2c0 "/soc/i2c@7e205000"
fdt set /aliases i2c1 "/soc/i2c@7e804000"
fdt set /aliases mmc0 "/emmc2bus/mmc@7e340000"
fdt set /aliases mmc1 "/soc/mmc@7e300000"
fdt set /soc/mailbox@7e00b840 compatible "brcm,bcm2836-vchiq"

if load ${vigil_disk} ${vigil_kernel_addr} ${BOOT_SLOT}/vmlinuz && load ${vigil_disk} ${vigil_initrd_addr} ${BOOT_SLOT}/initrd.img; then
    booti ${vigil_kernel_addr} ${vigil_initrd_addr}:${filesize} ${fdt_addr}
fi
# Only reached when the slot's kernel does not load or start: its try is spent, so the next
# start takes the other slot once this one has none left.
echo "Vigil: slot ${BOOT_SLOT} does not boot; restarting"
sleep 5
reset
