# error: syntax error, unexpected end of file, expecting ELSE
# at: 5:14
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
if true then 1