# expect-error: infinite recursion encountered
# expect-error: recursion.nix:7:32
# An option defined in terms of itself is placed at the definition, not inside rixos' modules.
# options: lists it
{ config, ... }: {
  fileSystems."/" = { device = "/dev/vda1"; fsType = "ext4"; };
  networking.hostName = config.networking.hostName;
}
