# expect-error: Exactly one of users.users.dave.isSystemUser and users.users.dave.isNormalUser must be set
# expect-error: neither-normal-nor-system.nix:5
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  users.users.dave.description = "Dave";
}
