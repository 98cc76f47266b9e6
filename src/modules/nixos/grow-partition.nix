# Growing into a larger disk at boot, for images written to disks bigger than themselves (cloud volumes, `qemu-img
# resize`): boot.growPartition moves the root's partition end to the end of its disk (growpart, which also moves
# GPT's backup header there), then every file system with autoResize grows to fill its partition
# (systemd-growfs, online). Both are no-ops once there is nothing left to grow.
{ config, lib, pkgs, utils, ... }:
let
  inherit (lib) mkOption types;
  systemd = config.systemd.package;
  # growpart runs `awk`, which Debian's gawk provides only through the alternatives system.
  awk = utils.runCommand "awk" { } "mkdir -p $out/bin && ln -s ${pkgs.gawk}/bin/gawk $out/bin/awk";
  resized = lib.filter (fs: fs.autoResize) (lib.attrValues config.fileSystems);
  unitName = fs: if fs.mountPoint == "/" then "root" else lib.replaceStrings [ "/" ] [ "-" ] (lib.removePrefix "/" fs.mountPoint);
  mountUnit = fs: if fs.mountPoint == "/" then "-.mount" else "${lib.replaceStrings [ "/" ] [ "-" ] (lib.removePrefix "/" fs.mountPoint)}.mount";
in
{
  options.boot.growPartition = mkOption {
    type = types.bool;
    default = false;
    description = "Whether the root file system's partition grows to the end of its disk at boot (growpart), as images need.";
  };
  config = {
    systemd.services = lib.listToAttrs (map (fs: lib.nameValuePair "rixos-growfs-${unitName fs}" {
      description = "Grow the file system on ${fs.mountPoint} to fill its partition";
      wantedBy = [ "local-fs.target" ];
      after = [ (mountUnit fs) ] ++ lib.optional (fs.mountPoint == "/" && config.boot.growPartition) "rixos-growpart.service";
      before = [ "local-fs.target" "shutdown.target" ];
      unitConfig = { DefaultDependencies = false; Conflicts = "shutdown.target"; };
      serviceConfig = { Type = "oneshot"; RemainAfterExit = true; ExecStart = "${systemd}/lib/systemd/systemd-growfs ${fs.mountPoint}"; };
    }) resized) // lib.optionalAttrs config.boot.growPartition {
      rixos-growpart = {
        description = "Grow the root partition to the end of its disk";
        wantedBy = [ "local-fs.target" ];
        after = [ "-.mount" ];
        before = [ "local-fs.target" "shutdown.target" ];
        unitConfig = { DefaultDependencies = false; Conflicts = "shutdown.target"; };
        # growpart exits 1 when the partition already ends at the disk's end (NOCHANGE).
        serviceConfig = { Type = "oneshot"; RemainAfterExit = true; SuccessExitStatus = "0 1"; };
        # growpart resizes with sfdisk (Debian's fdisk package), and reads and rereads the table with util-linux.
        path = [ pkgs.cloud-guest-utils pkgs.fdisk pkgs.util-linux pkgs.coreutils awk pkgs.gnused pkgs.gnugrep ];
        environment.GROWPART_RESIZER = "sfdisk";
        script = ''
          part=$(findmnt -no SOURCE /)
          part=$(readlink -f "$part")
          name=$(basename "$part")
          if [ ! -e "/sys/class/block/$name/partition" ]; then
            echo "growpart: the root $part is not a partition; nothing to grow" >&2
            exit 0
          fi
          number=$(cat "/sys/class/block/$name/partition")
          disk=/dev/$(basename "$(readlink -f "/sys/class/block/$name/..")")
          growpart "$disk" "$number"
        '';
      };
    };
  };
}
