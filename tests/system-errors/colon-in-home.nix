# expect-error: users.users.carol.home
# expect-error: not containing newlines or colons
# expect-error: colon-in-home.nix:6
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  users.users.carol = { isNormalUser = true; home = "/home/carol:x"; };
}
