# error: syntax error, unexpected end of file, expecting '{'
# at: 5:1
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
rec