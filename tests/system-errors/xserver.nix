# expect-error: services.xserver.enable is set (in
# expect-error: xserver.nix)
# expect-error: rixos has no X server yet
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  services.xserver.enable = true;
}
