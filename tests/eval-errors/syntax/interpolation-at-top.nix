# error: syntax error, unexpected DOLLAR_CURLY
# at: 5:1
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
${x}