# error: syntax error, unexpected ')', expecting end of file
# at: 5:17
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
let x = 1; in x )