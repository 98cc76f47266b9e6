# expect-error: GIDs must be unique
# expect-error: users.groups.media (defined in
# expect-error: duplicate-gid.nix:6
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  users.groups.media.gid = 100;
}
