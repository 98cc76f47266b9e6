# expect-error: Group names must be unique
# expect-error: duplicate-group-name.nix:6
# expect-error: duplicate-group-name.nix:7
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  users.groups.staff = { };
  users.groups.staff2.name = "staff";
}
