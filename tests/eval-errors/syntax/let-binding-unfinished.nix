# error: syntax error, unexpected end of file, expecting '.' or '='
# at: 5:12
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
let a = 1; a