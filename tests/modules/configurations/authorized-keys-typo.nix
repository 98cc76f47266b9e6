# expect-error: The option `users.users.bob.openssh.authorizedKeys.key' does not exist.
# expect-error: authorized-keys-typo.nix:7'
# expect-error: Did you mean `users.users.bob.openssh.authorizedKeys.keys'?
# A key typo would lock the user out.
{ ... }: {
  fileSystems."/" = { device = "/dev/vda1"; fsType = "ext4"; };
  users.users.bob.openssh.authorizedKeys.key = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEx bob@laptop" ];
  users.users.bob.isNormalUser = true;
}
