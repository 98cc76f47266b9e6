# expect-error: The option `users.users.bob.extraGroup' does not exist.
# expect-error: user-typo.nix:8'
# expect-error: Did you mean `users.users.bob.extraGroups'?
{ ... }: {
  fileSystems."/" = { device = "/dev/vda1"; fsType = "ext4"; };
  users.users.bob = {
    isNormalUser = true;
    extraGroup = [ "wheel" ];
  };
}
