# error: syntax error, unexpected end of file, expecting ';'
# at: 5:13
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
assert true 1