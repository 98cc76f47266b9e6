let f = { __functor = self: x: x + self.n; n = 10; }; in [ (f 5) (builtins.fromTOML "a = 1\n[b]\nc = \"d\"") (builtins.getAttr "n" f) (builtins.hasAttr "m" f) ]
