# Vigil qemu-aarch64: A/B boot driven by RAUC's U-Boot scheme (RAUC manual, "U-Boot"; the slot
# selection below is RAUC's example script). The environment holds
#   BOOT_ORDER="A B"   slots by priority, primary first (RAUC's mark-active puts a slot first)
#   BOOT_A_LEFT=3      boots slot A may still try; each start of the slot takes one, RAUC's
#   BOOT_B_LEFT=3      mark-good (vigild healthy) sets it back to 3, mark-bad to 0
# A boot that never reaches mark-good so uses up its slot, and the next slot in BOOT_ORDER is
# started; when no slot has a try left, every slot gets 3 again (as RAUC's example does).
#
# The variables live in the file uboot.env on this (the boot) partition, in U-Boot's own
# environment format with its CRC, so that Linux changes them with fw_setenv (/etc/fw_env.config
# names /boot/efi/uboot.env): this script imports them from it and saves them back to it with
# fatwrite, rather than through U-Boot's environment storage (QEMU's spare flash bank, which the
# rig does not keep).
#
# Debian's U-Boot for QEMU reads no squashfs: each slot's kernel and initramfs are kept here in
# <slot>/vmlinuz and <slot>/initrd.img (copied out of the slot's root at build and install time).
# Made into boot.scr with `mkimage -T script` by `vigil image build`.

setenv vigil_boot "${devtype} ${devnum}:${distro_bootpart}"
setenv vigil_env_addr 0x4fe00000
setenv vigil_env_size 0x4000
setenv BOOT_ORDER
setenv BOOT_A_LEFT
setenv BOOT_B_LEFT
if load ${vigil_boot} ${vigil_env_addr} uboot.env; then
    env import -c ${vigil_env_addr} ${vigil_env_size} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
fi
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3

setenv vigil_save "env export -c -s ${vigil_env_size} ${vigil_env_addr} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT; fatwrite ${vigil_boot} ${vigil_env_addr} uboot.env ${vigil_env_size}"

setenv rootpart
setenv raucslot
for BOOT_SLOT in "${BOOT_ORDER}"; do
    if test "x${rootpart}" != "x"; then
        # a slot is chosen: skip the others
    elif test "x${BOOT_SLOT}" = "xA"; then
        if test ${BOOT_A_LEFT} -gt 0; then
            setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
            setenv rootpart "PARTLABEL=rootfs-a"
            setenv raucslot "A"
        fi
    elif test "x${BOOT_SLOT}" = "xB"; then
        if test ${BOOT_B_LEFT} -gt 0; then
            setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
            setenv rootpart "PARTLABEL=rootfs-b"
            setenv raucslot "B"
        fi
    fi
done

if test -z "${rootpart}"; then
    echo "Vigil: no slot has a try left; giving every slot 3 again"
    setenv BOOT_A_LEFT 3
    setenv BOOT_B_LEFT 3
    run vigil_save
    reset
fi
run vigil_save
echo "Vigil: booting slot ${raucslot} (BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT})"

# Debian's arm64 vmlinuz is a plain Image (about 33 MB, below ramdisk_addr_r); should a kernel
# be a gzip'd Image instead, booti unpacks it at kernel_comp_addr_r.
if load ${vigil_boot} ${kernel_addr_r} ${raucslot}/vmlinuz; then
    setenv kernel_comp_addr_r 0x50000000
    setenv kernel_comp_size ${filesize}
    if load ${vigil_boot} ${ramdisk_addr_r} ${raucslot}/initrd.img; then
        setenv bootargs "root=${rootpart} rootfstype=squashfs ro rauc.slot=${raucslot} console=ttyAMA0 panic=5"
        booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}
    fi
fi
# Only reached when the slot's kernel or initramfs cannot be loaded or started: its try is
# saved, so the next start takes the other slot.
echo "Vigil: slot ${raucslot} does not boot; restarting"
sleep 3
reset
