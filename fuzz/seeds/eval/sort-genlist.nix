builtins.sort builtins.lessThan (builtins.genList (i: 7 - i) 8) ++ builtins.concatMap (x: [ x x ]) [ "p" "q" ]
