# error: syntax error, unexpected '='
# at: 5:18
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
x: { inherit x y = 1; }