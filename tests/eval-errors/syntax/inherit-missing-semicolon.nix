# error: syntax error, unexpected '}', expecting ';'
# at: 5:19
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
{ inherit ; a = 1 }