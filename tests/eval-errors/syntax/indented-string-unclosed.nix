# error: syntax error, unexpected end of file, expecting IND_STR or DOLLAR_CURLY or IND_STRING_CLOSE
# at: 5:3
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
''abc