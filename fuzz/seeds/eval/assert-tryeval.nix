assert 1 + 1 == 2; let r = builtins.tryEval (throw "boom"); in [ r.success (builtins.typeOf r) (builtins.seq 1 2) (1 / 2.0) (-3) (!false || true && false) (false -> 2 > 1) ]
