let s = { a.b.c = 1; a.d = [ 1.5 null true ]; }; in [ (s ? a.b) (s.a.x or "default") (builtins.toJSON s) (builtins.fromJSON "{\"k\": [1, 2.5, null]}") ]
