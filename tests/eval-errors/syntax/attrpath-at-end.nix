# error: syntax error, unexpected end of file, expecting ID or OR_KW or DOLLAR_CURLY or '"'
# at: 5:4
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
a.b.