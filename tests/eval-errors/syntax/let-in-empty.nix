# error: syntax error, unexpected end of file
# at: 5:5
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
let in