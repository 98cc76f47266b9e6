# expect-error: UIDs must be unique
# expect-error: users.users.alice (defined in
# expect-error: duplicate-uid.nix:8
# expect-error: users.users.bob (defined in
# expect-error: duplicate-uid.nix:9
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  users.users.alice = { isNormalUser = true; uid = 1000; };
  users.users.bob = { isNormalUser = true; uid = 1000; };
}
