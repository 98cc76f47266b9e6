# error: syntax error, unexpected '=', expecting ';'
# at: 8:17
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
{ ... }: {
  imports = [ ];
  networking.hostName = "x"
  time.timeZone = "UTC";
}
