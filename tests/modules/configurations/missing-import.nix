# expect-error: getting status of '
# expect-error: tests/modules/files/hardware-configuration.nix': No such file or directory
# expect-error: (named in the `imports' at
# expect-error: missing-import.nix:6)
{ ... }: {
  imports = [
    ../files/host.nix
    ../files/hardware-configuration.nix
  ];
  fileSystems."/" = { device = "/dev/vda1"; fsType = "ext4"; };
}
