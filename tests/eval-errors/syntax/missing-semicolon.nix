# error: syntax error, unexpected '=', expecting ';'
# at: 5:11
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
{ a = 1 b = 2; }