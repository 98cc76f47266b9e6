# error: syntax error, unexpected EQ, expecting '.' or '='
# at: 5:5
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
{ a == 1; }