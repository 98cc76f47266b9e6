# `rixos system build-vm`: the configuration as a QEMU guest. Its root is a disk image the run script makes
# on first start (`$RIXOS_DISK_IMAGE`, default ./<hostname>.img); /nix/store is the host's store, shared
# read-only over 9p. `result/bin/run-<hostname>-vm` honours QEMU_OPTS and QEMU_KERNEL_PARAMS as NixOS's does.
{ config, lib, pkgs, utils, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.virtualisation;
  host = config.networking.hostName;
  top = config.system.build.toplevel;
  # Files, not links: the script runs on the host, where the store may live under another root than / and a
  # link inside it (naming /nix/store) would lead outside.
  kernel = config.system.build.kernelFile;
  initrd = config.system.build.initrdFile;
  kernelParams = lib.concatStringsSep " " config.boot.kernelParams;
  # The closure's database records: the guest sees the host's store but not its database, so the run script
  # names these on the kernel command line (`regInfo=`, as NixOS's VMs do) and activation loads them.
  regInfo = derivation { name = "closure-info"; system = "x86_64-linux"; builder = "builtin:closure-info"; rootPaths = "${top}"; };
  run = lib.writeScript "run-${host}-vm" ''
    #!/usr/bin/env bash
    # Boots ${host} under QEMU (KVM when it works, else TCG). Runs on the host, where the store may live under
    # another root than /: everything is found relative to where this script is.
    set -euo pipefail
    self=$(readlink -f "$0")
    root=''${self%/nix/store/*}
    store="$root/nix/store"
    disk=''${RIXOS_DISK_IMAGE:-./${host}.img}
    command -v "''${RIXOS_QEMU:-qemu-system-x86_64}" >/dev/null || { echo "run-${host}-vm: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2; exit 1; }
    if [ ! -e "$disk" ]; then
      command -v mkfs.ext4 >/dev/null || { echo "run-${host}-vm: mkfs.ext4 is needed to create $disk (apt-get install e2fsprogs)" >&2; exit 1; }
      echo "run-${host}-vm: creating the disk image $disk (${toString cfg.diskSize} MiB)" >&2
      truncate -s ${toString cfg.diskSize}M "$disk.tmp"
      mkfs.ext4 -q -L rixos-vm -E root_owner=0:0 "$disk.tmp"
      mv "$disk.tmp" "$disk"
    fi
    # KVM only if Linux really boots under it (a nested /dev/kvm can start QEMU and never run a guest): rixos
    # decides that once per boot of the host by booting this system's kernel to a marker.
    rixos=''${RIXOS:-rixos}
    if command -v "$rixos" >/dev/null; then
      args=$("$rixos" qemu-accel --qemu-args --kernel "$root${kernel}")
      read -ra accel <<<"$args"
    elif [ "''${RIXOS_QEMU_ACCEL:-}" = kvm ]; then
      accel=(-accel kvm -cpu host)
    else
      echo "run-${host}-vm: rixos is not on PATH to decide whether KVM works here; using TCG (RIXOS_QEMU_ACCEL=kvm forces KVM, RIXOS names rixos)" >&2
      accel=(-accel tcg -cpu max)
    fi
    exec "''${RIXOS_QEMU:-qemu-system-x86_64}" -name "rixos-vm-${host}" -machine q35 "''${accel[@]}" \
      -m ${toString cfg.memorySize} -smp ${toString cfg.cores} \
      -kernel "$root${kernel}" -initrd "$root${initrd}" \
      -append ${lib.escapeShellArg kernelParams}" init=${top}/init regInfo=${regInfo}/registration ''${QEMU_KERNEL_PARAMS:-}" \
      -drive "file=$disk,if=virtio,format=raw" \
      -virtfs "local,path=$store,security_model=none,mount_tag=store,readonly=on" \
      -netdev "user,id=net0''${QEMU_NET_OPTS:+,$QEMU_NET_OPTS}" -device virtio-net-pci,netdev=net0 \
      ''${QEMU_OPTS:-} "$@"
  '';
in
{
  options.virtualisation = {
    memorySize = mkOption { type = types.ints.positive; default = 1024; description = "The VM's memory, in MiB."; };
    cores = mkOption { type = types.ints.positive; default = 1; description = "The VM's processors."; };
    diskSize = mkOption { type = types.ints.positive; default = 2048; description = "The size of the disk image made on first start, in MiB."; };
  };
  config = {
    fileSystems = lib.mkForce {
      "/" = { device = "/dev/disk/by-label/rixos-vm"; fsType = "ext4"; };
      "/nix/store" = {
        device = "store";
        fsType = "9p";
        options = [ "ro" "trans=virtio" "version=9p2000.L" "msize=262144" "cache=loose" ];
        neededForBoot = true;
      };
    };
    boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" "virtio_net" ];
    system.activationScripts.registerStore = {
      deps = [ "specialfs" ];
      text = ''
        # What this system uses of the shared store, registered in the guest's own database (the paths not yet
        # there), so `rixos gc` keeps it.
        if [[ " $(cat /proc/cmdline) " =~ \ regInfo=([^ ]+) ]]; then
          ${pkgs.rixos}/bin/rixos --store / -q store load-db < "''${BASH_REMATCH[1]}" \
            || echo "activation: registering the store paths of ''${BASH_REMATCH[1]} failed" >&2
        fi
      '';
    };
    # The script is copied, not linked: on a host whose store lives under another root, a link to
    # /nix/store/... would not resolve from `result`.
    system.build.vm = utils.runCommand "rixos-vm-${host}" { } ''
      mkdir -p $out/bin
      cp ${run} $out/bin/run-${host}-vm
      chmod 555 $out/bin/run-${host}-vm
      ln -s ${top} $out/system
      ln -s ${regInfo} $out/closure-info
    '';
  };
}
