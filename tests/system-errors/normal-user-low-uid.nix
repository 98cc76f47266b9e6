# expect-error: users.users.gina.uid is 500, below 1000, but users.users.gina.isNormalUser is set
# expect-error: normal-user-low-uid.nix:5
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  users.users.gina = { isNormalUser = true; uid = 500; };
}
