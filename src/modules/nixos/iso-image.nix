# A live ISO of the configuration: the closure as a squashfs that stage 1 mounts under a tmpfs overlay, GRUB for
# BIOS (El Torito) and UEFI (a FAT ESP holding BOOTX64.EFI), hybrid MBR and GPT so the file boots from a CD or a
# USB stick. `system.build.isoImage` is `$out/iso/<name>.iso` and its `.sha256`.
{ config, lib, pkgs, utils, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.isoImage;
  top = config.system.build.toplevel;
  params = lib.concatStringsSep " " config.boot.kernelParams;
  grubModules = [ "iso9660" "part_msdos" "part_gpt" "fat" "normal" "search" "search_label" "configfile" "linux"
    "echo" "test" "serial" "terminal" "gzio" "all_video" "sleep" ];
  # Found by the volume label, whichever way the ISO was booted; then the menu on the ISO.
  earlyConfig = builtins.toFile "grub-early.cfg" ''
    search --no-floppy --label --set=root ${cfg.volumeID}
    set prefix=($root)/boot/grub
    configfile ($root)/boot/grub/grub.cfg
  '';
  grubBios = utils.runCommand "grub-bios-eltorito" { path = [ pkgs.grub-common ]; } ''
    mkdir -p $out
    grub-mkimage -O i386-pc-eltorito -d ${pkgs.grub-pc-bin}/lib/grub/i386-pc -p /boot/grub -c ${earlyConfig} \
      -o $out/eltorito.img biosdisk ${lib.concatStringsSep " " grubModules}
    cp ${pkgs.grub-pc-bin}/lib/grub/i386-pc/boot_hybrid.img $out/boot_hybrid.img
  '';
  grubEfi = utils.runCommand "grub-efi-bootx64" { path = [ pkgs.grub-common ]; } ''
    mkdir -p $out
    grub-mkimage -O x86_64-efi -d ${pkgs.grub-efi-amd64-bin}/lib/grub/x86_64-efi -p /boot/grub -c ${earlyConfig} \
      -o $out/BOOTX64.EFI efi_gop efi_uga ${lib.concatStringsSep " " grubModules}
  '';
  entry = title: extra: ''
    menuentry "${title}" {
      linux /boot/bzImage init=${top}/init ${params} ${extra}
      initrd /boot/initrd
    }
  '';
  grubConfig = lib.writeText "grub.cfg" (''
    serial --unit=0 --speed=115200
    terminal_input console serial
    terminal_output console serial
    set timeout=${toString cfg.timeout}
    set default=0
  '' + entry "rixos ${config.system.stateVersion} live" "console=tty0 console=ttyS0,115200"
     + entry "rixos live, copied to RAM (the medium can be removed)" "console=tty0 console=ttyS0,115200 copytoram"
     + entry "rixos live, nomodeset" "console=tty0 console=ttyS0,115200 nomodeset"
     + entry "rixos live, serial console (ttyS0, 115200)" "console=ttyS0,115200");
in
{
  options.isoImage = {
    volumeID = mkOption {
      type = types.strMatching "[A-Z0-9_]{1,32}";
      default = "RIXOS_${lib.replaceStrings [ "." ] [ "_" ] config.system.stateVersion}";
      description = "The ISO's volume label (at most 32 characters: capitals, digits, _); stage 1 finds the medium by it.";
    };
    isoName = mkOption { type = types.str; default = "rixos-${config.system.stateVersion}-minimal-x86_64-linux"; description = "The image's file name, without .iso."; };
    timeout = mkOption { type = types.ints.unsigned; default = 5; description = "Seconds the boot menu waits."; };
    channel = mkOption { type = types.str; default = ""; internal = true; description = "The store path of the channels generation the ISO is built from (set by `rixos image build`): on the medium, and the live system's channels profile, so `rixos install` and `rixos system build` evaluate offline."; };
    channelList = mkOption { type = types.str; default = ""; internal = true; description = "The channel list (`URL NAME` lines) an installed machine updates from (set by `rixos image build`)."; };
  };
  config = {
    boot.initrd.extraConfig = "live LABEL=${cfg.volumeID} /rixos/store.squashfs\n";
    # Real hardware: disks and USB sticks, CD drives, and what a live root is made of.
    boot.initrd.availableKernelModules = [
      "isofs" "squashfs" "loop" "overlay" "sr_mod" "cdrom" "ahci" "ata_piix" "sd_mod" "usb_storage" "uas"
      "xhci_pci" "xhci_hcd" "ehci_pci" "ohci_pci" "uhci_hcd" "nvme" "virtio_pci" "virtio_blk" "virtio_scsi"
      "mmc_block" "sdhci_pci" "vfat" "nls_cp437" "nls_iso8859_1"
    ];
    # The medium's store registered in the live system's own database (NixOS's stage 2 does the same with
    # nix-store --load-db), so `rixos` on the live system (its default store is /) knows what it holds.
    system.activationScripts.registerStore = {
      deps = [ "specialfs" ];
      text = ''
        if [ -e /nix/store/nix-path-registration ] && [ ! -e /nix/var/nix/db/db.sqlite ]; then
          ${pkgs.rixos}/bin/rixos --store / -q store load-db < /nix/store/nix-path-registration \
            || echo "activation: registering the live medium's store paths failed" >&2
        fi
      '';
    };
    # The medium's channel as root's channels profile (as `rixos channel` keeps it), and the list it came from.
    system.activationScripts.channels = lib.mkIf (cfg.channel != "") {
      deps = [ "registerStore" ];
      text = ''
        if [ ! -e /nix/var/nix/profiles/per-user/root/channels ]; then
          mkdir -p /nix/var/nix/profiles/per-user/root /root/.nix-defexpr /nix/var/rixos
          ln -sfn ${cfg.channel} /nix/var/nix/profiles/per-user/root/channels-1-link
          ln -sfn channels-1-link /nix/var/nix/profiles/per-user/root/channels
          ln -sfn /nix/var/nix/profiles/per-user/root/channels /root/.nix-defexpr/channels
          printf '%b' ${lib.escapeShellArg cfg.channelList} > /nix/var/rixos/channels
        fi
      '';
    };
    system.build.isoImage = derivation {
      name = cfg.isoName;
      system = "x86_64-linux";
      builder = "builtin:iso-image";
      toplevel = top;
      channel = cfg.channel;
      volumeID = cfg.volumeID;
      isoName = cfg.isoName;
      kernel = "${top}/kernel";
      initrd = "${top}/initrd";
      grubConfig = grubConfig;
      grubBios = grubBios;
      grubEfi = grubEfi;
      # Every timestamp of the image: 1980-01-01, the earliest FAT can hold.
      sourceDateEpoch = "315532800";
    };
  };
}
