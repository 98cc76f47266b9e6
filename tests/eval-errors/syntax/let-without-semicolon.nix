# error: syntax error, unexpected IN, expecting ';'
# at: 5:11
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
let x = 1 in x