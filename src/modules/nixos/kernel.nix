# The kernel's module tree as the running system and the initrd use it: Debian's modules (the package has no
# modules.dep; its postinst would run depmod) linked file by file, with depmod's indexes beside them.
{ config, lib, pkgs, utils, ... }:
let
  kernel = config.boot.kernelPackages.kernel;
in
{
  options.boot.modulesTree = lib.mkOption {
    type = lib.types.package;
    internal = true;
    description = "The kernel's modules with depmod's index (`lib/modules/<version>`).";
  };
  config = {
    boot.modulesTree = utils.runCommand "kernel-modules" { path = [ pkgs.kmod ]; } ''
      version=$(ls ${kernel}/lib/modules)
      mkdir -p $out/lib/modules
      cp -rs ${kernel}/lib/modules/$version $out/lib/modules/$version
      chmod -R u+w $out
      depmod -b $out $version
    '';
    environment.etc."modules-load.d/rixos.conf" = lib.mkIf (config.boot.kernelModules != [ ]) {
      text = lib.concatLines config.boot.kernelModules;
    };
  };
}
