{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  # linux-image-amd64 is a metapackage: the kernel is the linux-image-VERSION-amd64 it depends on.
  debianKernel = pkgs.${lib.findFirst (lib.hasPrefix "linux-image-") "linux-image-amd64" pkgs.linux-image-amd64.debDepends};
in
{
  options.boot = {
    kernelPackages = mkOption { type = types.attrs; default = { kernel = debianKernel; }; defaultText = lib.literalExpression "{ kernel = <the kernel package pkgs.linux-image-amd64 points at>; }"; description = "The kernel and its modules (`kernel` is the package)."; };
    kernelParams = mkOption { type = types.listOf types.str; default = [ ]; description = "Parameters added to the kernel command line."; };
    kernelModules = mkOption { type = types.listOf types.str; default = [ ]; description = "Modules loaded in the second stage of boot."; };
  };
}
