# error: syntax error, unexpected ID, expecting '{'
# at: 5:3
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
x@y@{}: 1
