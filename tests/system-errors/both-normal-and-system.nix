# expect-error: Exactly one of users.users.erin.isSystemUser and users.users.erin.isNormalUser must be set
# expect-error: both-normal-and-system.nix:5
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  users.users.erin = { isNormalUser = true; isSystemUser = true; };
}
