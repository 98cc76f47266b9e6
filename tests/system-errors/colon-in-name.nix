# expect-error: The user name `bad:name' of users.users."bad:name"
# expect-error: colon-in-name.nix:5
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  users.users."bad:name".isNormalUser = true;
}
