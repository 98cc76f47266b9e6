# expect-error: users.users.frank.group is `builders', a group that is not defined
# expect-error: users.groups.builders = { };
# expect-error: undefined-group.nix:6
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  users.users.frank = { isSystemUser = true; group = "builders"; };
}
